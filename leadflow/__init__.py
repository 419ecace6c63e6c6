"""leadflow: the command line and the one-machine stack."""
