-- The history index follows the call row inside SQLite, so saving a call is
-- one statement (one round trip to the database thread) instead of four.
ALTER TABLE calls ADD COLUMN participants_json TEXT;

CREATE TRIGGER calls_participants_after_insert AFTER INSERT ON calls
WHEN NEW.participants_json IS NOT NULL
BEGIN
    INSERT INTO call_participants (session_id, uid, initiated_at, status)
    SELECT NEW.session_id, json_extract(value, '$.uid'), NEW.initiated_at, json_extract(value, '$.status')
    FROM json_each(NEW.participants_json)
    WHERE true
    ON CONFLICT(session_id, uid) DO UPDATE SET status = excluded.status;
END;

CREATE TRIGGER calls_participants_after_update AFTER UPDATE OF participants_json ON calls
WHEN NEW.participants_json IS NOT NULL
BEGIN
    INSERT INTO call_participants (session_id, uid, initiated_at, status)
    SELECT NEW.session_id, json_extract(value, '$.uid'), NEW.initiated_at, json_extract(value, '$.status')
    FROM json_each(NEW.participants_json)
    WHERE true
    ON CONFLICT(session_id, uid) DO UPDATE SET status = excluded.status;
END;
