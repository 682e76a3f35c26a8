"""Billing exports into the `billing` ledger: one collector, its formats told from the
columns (FOCUS now; AWS CUR, GCP and Azure exports plug in as further readers)."""
