"""Names every command shares."""

PROG = "pinrelay"
# the local stack's address and key (`make local`): where the commands go when given none
LOCAL_URL = "http://127.0.0.1:3000"
LOCAL_API_KEY = "local-ingest-key-for-this-machine-only"
# how long ingest and the sender keep a secret they read (SECRETS_MAX_AGE_SECONDS): a changed key,
# map or token is in use within this time
SECRETS_MAX_AGE_SECONDS = 300
