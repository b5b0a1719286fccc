namespace Escrow.Simulation;

// Time passing: each step's reminder ticks and breaker observation, then the settling with faults off until nothing is due.
public sealed partial class SimulationRun
{
    // ---------------------------------------------------------------- time

    private async Task AdvanceToAsync(DateTimeOffset at)
    {
        if (at > Now)
        {
            _sim.Clock.AdjustTime(at);
        }
        await Task.CompletedTask;
    }

    /// <summary>After each action: new authorisations become webhooks, due reminders tick, chaos happens.</summary>
    private async Task AfterStepAsync()
    {
        List<SimPaymentIntent> fresh;
        List<(Guid EscrowId, TransferInfo Transfer)> transfers;
        lock (_stripe.Gate)
        {
            fresh = _stripe.Authorised.Skip(_authorisedSeen).ToList();
            _authorisedSeen = _stripe.Authorised.Count;
            transfers = [.. _stripe.Transfers.SelectMany(kv => kv.Value.Select(t => (kv.Key, t))).Where(x => _transfersSeen.Add(x.Item2.Id))];
        }
        foreach (var (escrowId, t) in transfers)
        {
            // Stripe's transfer.created, for every transfer made, including those whose answer the caller lost.
            var e = _escrows.FirstOrDefault(x => x.Id == escrowId);
            if (e is not null)
            {
                ScheduleDelivery(e, new PaymentEvent(PaymentEventKind.TransferCreated, t.Id, t.AmountMinor, t.Currency.ToLowerInvariant(), null, t.DestinationAccountId), "transfer_created", Now, 0);
            }
        }
        foreach (var pi in fresh)
        {
            var e = _escrows.FirstOrDefault(x => x.Id == pi.EscrowId);
            if (e is not null)
            {
                ScheduleDelivery(e, new PaymentEvent(PaymentEventKind.Authorised, pi.Id, pi.AmountMinor, pi.Currency.ToLowerInvariant(), null), "authorised", Now, 0);
            }
        }
        await TickDueAsync(settling: false);
        if (Fault(FaultKind.BreakerDeactivated))
        {
            await Harness(() => _sim.Grains.GetGrain<ICircuitBreakerGrain>(0).AsReference<IGrainManagementExtension>().DeactivateOnIdle().AsTask());
        }
        if (_escrows.Count > 0 && Fault(FaultKind.EscrowDeactivated))
        {
            var e = _escrows[_rng.Next(_escrows.Count)];
            await Harness(() => e.Grain.AsReference<IGrainManagementExtension>().DeactivateOnIdle().AsTask());
        }
        if (_escrows.Count > 0 && Fault(FaultKind.EarlyTick))
        {
            // A reminder tick that comes early (or for nothing): the grain must compare the clock with its due times.
            var e = _escrows[_rng.Next(_escrows.Count)];
            if (e.Created)
            {
                await Guarded(() => e.Grain.WakeAsync());
            }
        }
        if (_escrows.Count > 0 && Fault(FaultKind.DuplicatePayoutsEnabled))
        {
            var e = _escrows[_rng.Next(_escrows.Count)];
            if (e.Created)
            {
                await Guarded(() => e.Grain.RecipientPayoutsEnabledAsync());
            }
        }
        await ObserveBreakerAsync();
    }

    private async Task ObserveBreakerAsync()
    {
        var view = await Harness(() => _sim.Grains.GetGrain<ICircuitBreakerGrain>(0).GetAsync());
        if (view.RefundsInWindow > SimulationCluster.RefundsPerWindowMax || view.RefundAmountInWindowMinor > SimulationCluster.RefundAmountPerWindowMaxMinor)
        {
            Violation($"the breaker counts {view.RefundsInWindow} refunds ({view.RefundAmountInWindowMinor}) in its window, over the caps");
        }
    }

    /// <summary>
    /// Plays the reminder service: an escrow whose stored due time has come gets a tick, but only if it has a reminder
    /// registered (a reminder that was never registered never ticks) and, until the outage ends, not while that
    /// reminder is known to fire later: an activation that finished work its stored state still lists (sent e-mails
    /// whose completion rides on the next write) moves its reminder on, and a tick by the stored due time would find
    /// nothing to do. While settling, every escrow with stored work left and a reminder is ticked. Ticks can be missed
    /// or doubled.
    /// </summary>
    private async Task<int> TickDueAsync(bool settling)
    {
        var ticked = 0;
        var now = Now;
        foreach (var e in _escrows)
        {
            if (!e.Created)
            {
                continue;
            }
            var s = _sim.Storage.Get<EscrowState>("escrow", e.Grain.GetGrainId());
            if (s is null || !s.Exists)
            {
                continue;
            }
            var due = EscrowMachine.NextDueAt(s);
            var unsynced = settling && await Unsynced(s);
            if ((due is null || due > now) && !unsynced)
            {
                continue;
            }
            if (!settling && _sim.Reminders.FirstFiresAt(e.Grain.GetGrainId()) is { } firesAt && firesAt > now)
            {
                continue;
            }
            if (!await HasReminderAsync(e.Grain))
            {
                continue;
            }
            if (Fault(FaultKind.MissedTick))
            {
                continue;
            }
            await Guarded(() => e.Grain.WakeAsync());
            ticked++;
            if (Fault(FaultKind.DuplicateTick))
            {
                await Guarded(() => e.Grain.WakeAsync());
            }
        }
        foreach (var r in _recipients)
        {
            // The payout-setup poll reminder (daily).
            if (now - r.LastPoll < TimeSpan.FromDays(1) && !settling)
            {
                continue;
            }
            r.LastPoll = now;
            var grain = _sim.Grains.GetGrain<IRecipientGrain>(r.Id);
            if (await HasReminderAsync(grain) && !Fault(FaultKind.MissedTick))
            {
                await Guarded(async () => await grain.RefreshAccountAsync());
            }
        }
        return ticked;
    }

    private async Task<bool> Unsynced(EscrowState s)
    {
        var projection = await _sim.Store.Inner.GetEscrowAsync(s.Id);
        return projection is null || projection.Version != s.History.Length;
    }

    private async Task<bool> HasReminderAsync(IAddressable grain) =>
        (await Harness(() => _sim.Reminders.ReadRows(grain.GetGrainId()))).Reminders.Count > 0;

    private async Task SettleAsync()
    {
        var quiet = 0;
        var jumps = 0;
        for (var round = 0; round < SettleRoundsMax && quiet < 3; round++)
        {
            var before = Snapshot();
            _sim.Clock.Advance(SettleStep);
            var pending = _queue.Count;
            while (_queue.TryPeek(out _, out var when) && when.Item1 <= Now.UtcTicks)
            {
                await Guarded(_queue.Dequeue());
            }
            var ticked = await TickDueAsync(settling: true);
            await AfterStepAsync();
            // Quiet only once every turn started so far has ended (their writes and ledger syncs are in the snapshot).
            await _sim.Calls.WhenIdleAsync();
            quiet = Snapshot() == before && ticked == 0 && pending == 0 ? quiet + 1 : 0;
            if (quiet >= 3 && jumps < SettleJumpsMax && NextDueOfUnfinished() is { } due && due > Now)
            {
                // Quiet, but an unfinished escrow has a timer that will move it (a transfer retry, a payout check):
                // go there, as the reminder service would.
                _sim.Clock.Advance(due - Now);
                quiet = 0;
                jumps++;
            }
        }
    }

    /// <summary>
    /// The next timer of an escrow that is not finished, leaving out those that wait for a payee who never sets up
    /// (their payout check repeats forever) and those under an open dispute (nothing moves until an operator acts).
    /// </summary>
    private DateTimeOffset? NextDueOfUnfinished()
    {
        DateTimeOffset? next = null;
        foreach (var e in _escrows.Where(e => e.Created))
        {
            var s = _sim.Storage.Get<EscrowState>("escrow", e.Grain.GetGrainId());
            if (s is null || !s.Exists || s.IsTerminal || s.DisputeOpen || WaitingForPayee(s))
            {
                continue;
            }
            if (EscrowMachine.NextDueAt(s) is { } due && (next is null || due < next))
            {
                next = due;
            }
        }
        return next;
    }

    private bool WaitingForPayee(EscrowState s) =>
        s.Status == EscrowStatus.PendingUserSetup && !_recipients.First(r => r.Id == s.RecipientId).Enabled;

    private string Snapshot() => string.Join(",", _escrows.Where(e => e.Created).Select(e =>
    {
        var s = _sim.Storage.Get<EscrowState>("escrow", e.Grain.GetGrainId());
        return s is null ? "-" : $"{(int)s.Status}:{s.Outbox.Length}:{s.History.Length}";
    }));
}
