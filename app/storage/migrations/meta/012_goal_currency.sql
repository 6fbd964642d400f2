-- Revenue goals (issue #20): a goal may carry an ISO 4217 currency, as Plausible's goals
-- do. Plausible's Stats API v2 answers total_revenue and average_revenue in it (money
-- objects) when the question's goals agree on one currency; NULL: no revenue goal.
ALTER TABLE goals ADD COLUMN currency TEXT;
