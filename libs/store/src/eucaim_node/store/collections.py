"""Names of every MongoDB collection the node keeps, in one place (operators back these up).

Each collection has exactly one writing service; readers are listed for the reader's sake.
"""

#: reception: the clinical Orthanc /changes cursor.
RECEPTION_CURSORS = "reception_cursors"
#: reception: the last announced state (LastUpdate) of each clinical study.
RECEPTION_RECEIVED_STUDIES = "reception_received_studies"
#: anonymisation: held-back clinical instances with reasons (Orthanc IDs, never identifiers).
ANONYMISATION_QUARANTINE = "anonymisation_quarantine"
#: metadata (written), catalogue-sync (read): one document per de-identified study.
CATALOGUE_STUDIES = "catalogue_studies"
#: metadata: one document per de-identified series.
CATALOGUE_SERIES = "catalogue_series"
#: catalogue-sync: per-collection aggregates.
CATALOGUE_COLLECTIONS = "catalogue_collections"
#: audit: one record per event, keyed by event ID (append-only); each is a leaf of the Merkle tree.
AUDIT_RECORDS = "audit_records"
#: audit: signed tree heads of the ledger, ``_id`` = tree size.
AUDIT_TREE_HEADS = "audit_tree_heads"
#: audit: small state documents (the syslog forwarding cursor).
AUDIT_LEDGER_STATE = "audit_ledger_state"
