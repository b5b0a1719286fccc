using Orleans.Storage;

namespace Escrow.Grains;

// Loading, staging and writing the state; the ledger and projection written after it.
public sealed partial class EscrowGrain
{
    /// <summary>
    /// Reads the stored state on the first call that needs it, and again after a failed flush, when what is stored is
    /// unknown: the activation asked to go, but a call may still reach it first, and it must not trust memory, which may
    /// be older than what was stored (the write's answer was lost) or hold a decision that was never stored.
    /// </summary>
    private async Task LoadAsync()
    {
        if (_loaded && !_storedUnknown)
        {
            return;
        }
        var first = !_loaded && !_storedUnknown;
        await state.ReadStateAsync();
        EscrowInvariants.Check(state.State);
        _dirty = false;
        _durable = state.State;
        _durableEffects = DurableEffects(state.State);
        if (first)
        {
            // Effects numbered from here on are created by this activation; those below may have run in an earlier one.
            _firstEffectIdOfActivation = state.State.NextEffectId;
            if (state.State.Exists)
            {
                // An activation checks its due times when it wakes up: a reminder tick can be lost. The message to
                // itself runs right after the call that woke it.
                this.AsReference<IEscrowGrain>().DriveAsync().Ignore();
            }
        }
        else
        {
            // Effects performed before the failure may be in the stored outbox or be decided again with the same ids:
            // from now on every effect counts as possibly done (the email log is checked before any one-time email).
            _firstEffectIdOfActivation = int.MaxValue;
            _syncedVersion = -1;
            _syncedOutboxSeq = -1;
            _reminderDue = null;
            _reminderKnown = false;
            _reminder = null;
        }
        _loaded = true;
        _storedUnknown = false;
    }

    /// <summary>Writes now: used where a caller must know the decision is durable before it goes on.</summary>
    private async Task SaveAsync(EscrowState next)
    {
        Stage(next);
        await FlushAsync();
    }

    /// <summary>
    /// Applies a change that needs no write of its own (a completion recorded outside, <see cref="EffectOutcome.RecordedOutside"/>): it is
    /// in the state the next <see cref="FlushAsync"/> writes, but does not cause one.
    /// </summary>
    private void StageUnwritten(EscrowState next)
    {
        next = EffectAge.Stamp(next, Now);
        EscrowInvariants.Check(next);
        state.State = next;
    }

    /// <summary>Applies a decided state in memory; <see cref="FlushAsync"/> makes it durable.</summary>
    private void Stage(EscrowState next)
    {
        next = EffectAge.Stamp(next, Now);
        EscrowInvariants.Check(next);
        var before = state.State;
        state.State = next;
        _dirty = true;
        if (before.Status != next.Status)
        {
            LogStatus(Id, before.Status.ToWire(), next.Status.ToWire());
            EscrowTelemetry.StatusChanges.Add(1, new KeyValuePair<string, object?>("status", next.Status.ToWire()));
            switch (next.Status)
            {
                case EscrowStatus.Released:
                    EscrowTelemetry.Released.Add(1);
                    break;
                case EscrowStatus.Refunded:
                    EscrowTelemetry.Refunded.Add(1);
                    break;
                case EscrowStatus.TransferFailed:
                    EscrowTelemetry.TransferFailures.Add(1);
                    break;
            }
        }
    }

    private async Task FlushAsync()
    {
        if (!_dirty)
        {
            return;
        }
        var next = state.State;
        // The reminder that re-drives a crash must exist before the state that needs it is written: otherwise a
        // process that dies (or a write whose answer is lost) between the write and ScheduleAsync leaves work
        // that nothing will ever come back for.
        try
        {
            await EnsureReminderAsync(next);
            await state.WriteStateAsync();
        }
        catch (InconsistentStateException) when (!_loaded)
        {
            // The first insert of an activation that has not read found a stored escrow: nothing was written, and the
            // next call reads what is stored (the create that tried it does so at once).
            _dirty = false;
            throw;
        }
        catch
        {
            // Not written, or written with the answer lost: what is stored is unknown. Memory is not trusted any more
            // (no later call is answered from a decision that may not be durable); the activation goes, and whatever
            // call reaches it first reads the stored state again.
            _dirty = false;
            _storedUnknown = true;
            DeactivateOnIdle();
            throw;
        }
        _dirty = false;
        _loaded = true;
        _writes++;
        _durable = next;
        _durableEffects = DurableEffects(next);
    }

    /// <summary>Writes the ledger rows and the projection. Idempotent; a failure is retried on the next write or tick.</summary>
    private async Task SyncAsync()
    {
        var s = state.State;
        if (!s.Exists || !Unsynced(s))
        {
            return;
        }
        try
        {
            await store.SyncEscrowAsync(EscrowViews.Projection(s), EscrowViews.Ledger(s, _syncedVersion < 0 ? 0 : _syncedVersion));
            _syncedVersion = s.History.Length;
            _syncedOutboxSeq = EffectAge.Seq(s);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogSyncFailed(e, Id);
        }
    }
}
