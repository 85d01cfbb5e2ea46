-- Announce, in the transaction that makes the change, an execution reaching a terminal status
-- (channel spine_execution_finished, payload its id) and new claimable work (channel spine_work,
-- payload its lane). Listeners learn of it at commit; nothing is announced for a rollback.
-- The status list is rendered from spine_core.status.TERMINAL_STATUSES when the chain loads.
CREATE OR REPLACE FUNCTION spine_announce_execution() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status = NEW.status THEN
        RETURN NULL;
    END IF;
    IF NEW.status IN ({terminal_statuses}) THEN
        PERFORM pg_notify('spine_execution_finished', NEW.id);
    ELSIF NEW.status = 'queued' THEN
        PERFORM pg_notify('spine_work', NEW.lane);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER executions_announce
    AFTER INSERT OR UPDATE OF status ON executions
    FOR EACH ROW EXECUTE FUNCTION spine_announce_execution();
