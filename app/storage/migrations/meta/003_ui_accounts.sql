-- Optional TOTP two-factor sign-in (settings UI): the base32 secret, and the last time step
-- a code was accepted for, so a code can't be replayed within its window.
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER;
