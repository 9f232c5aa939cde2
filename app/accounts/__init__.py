"""Users, API keys and grants (:mod:`app.accounts.store`); the access policy that wraps the service
for one principal (:mod:`app.accounts.access`)."""
