-- Seed rows of the sandbox's ai_saas_prod, loaded after migrations/0001_baseline.sql.
INSERT INTO users (email, display_name, password_hash, created_at)
SELECT 'user' || g || '@example.com', 'User ' || g, md5('seed' || g), timestamptz '2025-01-01' + g * interval '1 hour'
FROM generate_series(1, 1000) AS g;

INSERT INTO subscriptions (user_id, plan, status, started_at, renews_at)
SELECT id, (ARRAY['free', 'pro', 'team', 'enterprise'])[1 + id % 4], CASE WHEN id % 17 = 0 THEN 'past_due' ELSE 'active' END,
       created_at, created_at + interval '30 days'
FROM users;

INSERT INTO conversations (user_id, title, created_at, updated_at)
SELECT 1 + (g % 1000), 'Conversation ' || g, timestamptz '2025-02-01' + g * interval '7 minutes', timestamptz '2025-02-01' + g * interval '7 minutes'
FROM generate_series(1, 3000) AS g;

INSERT INTO messages (conversation_id, role, content, tokens, created_at)
SELECT 1 + (g % 3000), CASE WHEN g % 2 = 0 THEN 'assistant' ELSE 'user' END,
       'Message ' || g || ': ' || repeat('lorem ipsum ', 1 + g % 8), 10 + g % 200, timestamptz '2025-02-01' + g * interval '1 minute'
FROM generate_series(1, 12000) AS g;
