"""One module per wire protocol; each only parses, calls the service layer and serializes."""
