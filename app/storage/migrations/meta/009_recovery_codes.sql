-- One-time recovery codes of two-factor sign-in: only an HMAC of each code is stored (keyed
-- with data_dir/totp.key, so a copy of this file alone can't be brute-forced); a used code
-- keeps its row with used_at set.
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    digest  BLOB NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (user_id, digest)
);
