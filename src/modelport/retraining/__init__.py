"""The closed loop: retrain on fresh labelled data when monitoring says so, promote only a better
model, and keep an audit trail of every check, run, decision, promotion and rollback."""
