"""Dataset adapters (one module per dataset) and PAIN-DB assembly; the synthetic generator is engine.synth."""
