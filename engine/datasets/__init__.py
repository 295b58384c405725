"""Dataset adapters (one module per dataset), the synthetic generator and PAIN-DB assembly."""
