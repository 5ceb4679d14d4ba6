"""Names of every MongoDB collection the node keeps, in one place (operators back these up).

Each collection has exactly one writing service; readers are listed for the reader's sake. Who may do
what on each one is declared in :mod:`eucaim_node.store.access` (MongoDB roles follow from it); a unit
test fails when code names a collection that is not listed here.
"""

#: reception: the clinical Orthanc /changes cursor.
RECEPTION_CURSORS = "reception_cursors"
#: reception: the last announced state (LastUpdate) of each clinical study.
RECEPTION_RECEIVED_STUDIES = "reception_received_studies"
#: anonymisation: held-back clinical instances with reasons (Orthanc IDs, never identifiers).
ANONYMISATION_QUARANTINE = "anonymisation_quarantine"
#: anonymisation: subjects who withdrew consent, keyed by subject key; their studies are never released.
ANONYMISATION_WITHDRAWALS = "anonymisation_withdrawals"
#: metadata (written), catalogue-sync (read): one document per de-identified study.
CATALOGUE_STUDIES = "catalogue_studies"
#: metadata: one document per de-identified series.
CATALOGUE_SERIES = "catalogue_series"
#: metadata: one document per pseudonymous subject (CDM subject), recomputed from its studies.
CATALOGUE_SUBJECTS = "catalogue_subjects"
#: metadata (written), catalogue-sync (read): studies removed from the catalogue (consent withdrawal), with when.
CATALOGUE_REMOVED_STUDIES = "catalogue_removed_studies"
#: metadata: subjects who withdrew (pseudonymous keys): their studies are never catalogued again.
CATALOGUE_WITHDRAWN_SUBJECTS = "catalogue_withdrawn_subjects"
#: catalogue-sync: per-collection aggregates.
CATALOGUE_COLLECTIONS = "catalogue_collections"
#: catalogue-sync: each collection's aggregates in parts, one entry per subject (decision 0091).
CATALOGUE_COLLECTION_PARTS = "catalogue_collection_parts"
#: catalogue-sync: the totals of each part (small: what a collection update and a search read).
CATALOGUE_COLLECTION_PART_TOTALS = "catalogue_collection_part_totals"
#: catalogue-sync: the collections in which each subject has (or had) an entry.
CATALOGUE_SUBJECT_PLACES = "catalogue_subject_places"
#: catalogue-sync: every published version of every dataset description, and its delivery state (the outbox).
CATALOGUE_DATASET_VERSIONS = "catalogue_dataset_versions"
#: catalogue-sync: node secrets of the search (the noise key), created once.
CATALOGUE_SEARCH_STATE = "catalogue_search_state"
#: materialiser (written; it applies the operator's DatasetCommand events), CLI, catalogue-sync (read): one document
#: per dataset version (Tier 3), ``_id`` = dataset ID.
DATASETS = "datasets"
#: materialiser (written, from DatasetCommand grant/revoke): access grants on datasets (who, which dataset, from, until, granted by, closed).
DATASET_GRANTS = "dataset_grants"
#: materialiser: the outcome of each operator command on datasets (``_id`` = the command's event ID), for the CLI.
DATASET_COMMANDS = "dataset_commands"
#: audit: one record per event, keyed by event ID (append-only); each is a leaf of the Merkle tree.
AUDIT_RECORDS = "audit_records"
#: audit: signed tree heads of the ledger, ``_id`` = tree size.
AUDIT_TREE_HEADS = "audit_tree_heads"
#: audit: small state documents (the syslog forwarding cursor).
AUDIT_LEDGER_STATE = "audit_ledger_state"
#: audit: hashes of the Merkle tree's perfect subtrees (``_id`` = "level/index"), so a proof reads O(log n) of them.
AUDIT_TREE_NODES = "audit_tree_nodes"

#: jobs: one document per processing job (issue 11): request, state, report, outputs and their review decisions.
JOBS = "jobs"

#: Every collection of the node's database.
ALL: tuple[str, ...] = (
    RECEPTION_CURSORS, RECEPTION_RECEIVED_STUDIES, ANONYMISATION_QUARANTINE, ANONYMISATION_WITHDRAWALS,
    CATALOGUE_STUDIES, CATALOGUE_SERIES, CATALOGUE_SUBJECTS, CATALOGUE_REMOVED_STUDIES, CATALOGUE_WITHDRAWN_SUBJECTS,
    CATALOGUE_COLLECTIONS, CATALOGUE_COLLECTION_PARTS, CATALOGUE_COLLECTION_PART_TOTALS, CATALOGUE_SUBJECT_PLACES,
    CATALOGUE_DATASET_VERSIONS, CATALOGUE_SEARCH_STATE, DATASETS, DATASET_GRANTS, DATASET_COMMANDS,
    AUDIT_RECORDS, AUDIT_TREE_HEADS, AUDIT_LEDGER_STATE, AUDIT_TREE_NODES, JOBS,
)

#: The withdrawal list: who withdrew consent. Only the services that enforce it write it.
WITHDRAWAL_LIST: tuple[str, ...] = (ANONYMISATION_WITHDRAWALS, CATALOGUE_WITHDRAWN_SUBJECTS)
