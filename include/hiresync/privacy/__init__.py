"""Keys, column encryption, blind indexes, masks, recipient policy, retention and subject requests."""
