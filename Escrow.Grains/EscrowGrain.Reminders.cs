namespace Escrow.Grains;

// The one reminder an escrow keeps while it has work left.
public sealed partial class EscrowGrain
{
    public Task ReceiveReminder(string reminderName, TickStatus status)
    {
        _reminderKnown = true;
        return WakeAsync();
    }

    /// <summary>
    /// Keeps one reminder while the escrow has work left (a due time, an effect, an unsynced ledger row), and
    /// removes it only after the outbox is empty and the ledger is written, so a crash re-drives what is left.
    /// </summary>
    private async Task ScheduleAsync()
    {
        var s = state.State;
        var next = EscrowMachine.NextDueAt(s);
        if (next is null && s.Exists && Unsynced(s))
        {
            next = Now + options.Value.ReminderPeriod;
        }
        if (next is null)
        {
            if (_reminderKnown || _reminderDue is not null || !s.Exists || s.IsTerminal)
            {
                await RemoveReminderAsync();
                _reminderKnown = false;
                _reminderDue = null;
            }
            return;
        }
        // A registered reminder that has not fired yet and comes no later than the next due time is kept: moving it
        // later would cost a commit on the caller's path (the hold of every new escrow moved its reminder from the
        // backstop to the first deadline warning). If it fires early, the tick finds nothing due and moves it then;
        // an escrow whose work is done before it fires (a quick reply) never moves it at all.
        if (_reminderDue is { } registered && registered <= next && registered > Now)
        {
            return;
        }
        var dueTime = next.Value - Now;
        if (dueTime < TimeSpan.Zero)
        {
            dueTime = TimeSpan.Zero;
        }
        await RegisterReminderAsync(dueTime);
    }

    /// <summary>Registers (or moves) the escrow's reminder to fire after <paramref name="dueTime"/>, then every period.</summary>
    private async Task RegisterReminderAsync(TimeSpan dueTime)
    {
        if (options.Value.MaxReminderDueTime is { } cap && dueTime > cap)
        {
            dueTime = cap;
        }
        var firesAt = Now + dueTime;
        _reminder = await this.RegisterOrUpdateReminder(ReminderName, dueTime, options.Value.ReminderPeriod);
        // When it first fires (capped or not): what "comes no later than" is compared with.
        _reminderDue = firesAt;
        _reminderKnown = true;
    }

    /// <summary>
    /// Removes the reminder with the handle this activation registered (no read); without one, or when the handle's
    /// version is no longer the stored one (another activation moved it), reads the stored row and removes that.
    /// </summary>
    private async Task RemoveReminderAsync()
    {
        var handle = _reminder;
        _reminder = null;
        if (handle is not null)
        {
            try
            {
                await this.UnregisterReminder(handle);
                return;
            }
            catch (ReminderException)
            {
                // Version mismatch: the stored reminder is not the one this activation registered.
            }
        }
        if (await this.GetReminder(ReminderName) is { } stored)
        {
            await this.UnregisterReminder(stored);
        }
    }

    /// <summary>Registers the reminder early enough for the work in <paramref name="next"/>, unless one already comes by then.</summary>
    private async Task EnsureReminderAsync(EscrowState next)
    {
        if (!next.Exists)
        {
            return;
        }
        // History that the ledger does not have yet is work too: a terminal escrow whose write succeeds but whose
        // answer is lost must still come back to sync its ledger.
        DateTimeOffset? needed = EscrowMachine.NextDueAt(next) ?? (Unsynced(next) ? Now : null);
        if (needed is not { } due)
        {
            return;
        }
        var backstop = Now + options.Value.ReminderPeriod;
        if (due < backstop)
        {
            due = backstop;
        }
        if (_reminderDue is { } known && known <= due)
        {
            return;
        }
        await RegisterReminderAsync(due - Now);
    }
}
