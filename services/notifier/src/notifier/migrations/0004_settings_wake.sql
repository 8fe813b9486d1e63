-- A changed channel setting wakes the delivery workers of every replica (LISTEN channel_settings,
-- the payload is the channel): a worker backing off from an unreachable or refusing provider
-- tries again at once with the new settings instead of waiting out its pause (up to 600 s).
CREATE FUNCTION notify_channel_settings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('channel_settings', NEW.channel);
    RETURN NULL;
END $$;

CREATE TRIGGER channel_settings_notify AFTER INSERT OR UPDATE ON channel_settings
    FOR EACH ROW EXECUTE FUNCTION notify_channel_settings();
