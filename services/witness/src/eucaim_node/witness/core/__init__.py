"""The witness's pure logic (c2sp.org/tlog-witness: what to cosign, what to refuse)."""
