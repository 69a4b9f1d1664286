"""The gate (ci/gate, python -m ci.gate) and its pytest plugin, KTAP writer and reports."""
