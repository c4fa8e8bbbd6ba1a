"""The epics stage: analysed cards → epics (grouped, then written up one epic per item)."""
