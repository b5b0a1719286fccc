namespace Escrow.Simulation;

// The plan of a seed: the escrows' lives, the replies and disputes, and the chaos, as timed actions on the queue.
public sealed partial class SimulationRun
{
    private void PlanEscrows()
    {
        Span<int> windows = [24, 48, 72];
        for (var i = 0; i < _settings.Escrows; i++)
        {
            var bytes = new byte[16];
            _rng.NextBytes(bytes);
            var e = new Sender
            {
                Index = i,
                Id = new Guid(bytes),
                RecipientId = _recipients[_rng.Next(_recipients.Count)].Id,
                Window = TimeSpan.FromHours(windows[_rng.Next(3)]),
                RequestHash = Convert.ToHexString(bytes.AsSpan(0, 8)),
            };
            e.Grain = _sim.Grains.GetGrain<IEscrowGrain>(e.Id);
            var p = _rng.NextDouble();
            e.PaymentMethod = p < 0.75 ? "pm_card_visa" : p < 0.95 ? null : "pm_card_chargeDeclined";
            _escrows.Add(e);
            var createAt = _t0 + Minutes(0, 180);
            At(createAt, () => CreateAsync(e, attempt: 0));
            var deadline = createAt + e.Window;
            var graceEnd = deadline + TimeSpan.FromMinutes(15);

            if (e.PaymentMethod is null)
            {
                var q = _rng.NextDouble();
                if (q < 0.75)
                {
                    At(createAt + Minutes(1, 90), () => ConfirmAsync(e));
                }
                else if (q < 0.85)
                {
                    At(createAt + Minutes(1, 50), () => DeliverAsync(e, new PaymentEvent(PaymentEventKind.Failed, _stripe.IntentOf(e.Id)?.Id ?? "pi_unknown", 0, null, "card_declined"), "payment_failed"));
                }
            }

            var r = _rng.NextDouble();
            DateTimeOffset? replyAt = r switch
            {
                < 0.40 => createAt + TimeSpan.FromTicks((long)(_rng.NextDouble() * e.Window.Ticks)),
                < 0.55 => deadline + Minutes(0, 15),
                < 0.65 => graceEnd + Minutes(1, 180),
                _ => null,
            };
            if (replyAt is { } at)
            {
                PlanReply(e, at);
            }
            var randomDispute = Chance(0.03);
            if (randomDispute)
            {
                var disputeAt = createAt + TimeSpan.FromHours(_rng.NextDouble() * 80);
                At(disputeAt, () => DeliverAsync(e, new PaymentEvent(PaymentEventKind.DisputeOpened, $"dp_{e.Index}", 0, null, null), "dispute"));
                if (Chance(0.7))
                {
                    At(disputeAt + TimeSpan.FromHours(_rng.NextDouble() * 20), () => OperateAsync(e, OperatorActionKind.ResolveDispute));
                }
            }
            if (Chance(0.02))
            {
                At(createAt + TimeSpan.FromHours(_rng.NextDouble() * 80), () => ReverseTransferAsync(e));
            }
            if (!randomDispute && Chance(_faults.Rates.DisputeAfterRelease))
            {
                At(graceEnd + Minutes(30, 600), () => DisputeAfterReleaseAsync(e));
            }
        }
    }

    /// <summary>
    /// A chargeback on a released escrow, as Stripe sends it: charge.dispute.created, then, hours later,
    /// charge.dispute.closed won or lost. While it is open Stripe refuses to refund the charge; once lost, the money
    /// is already back with the cardholder.
    /// </summary>
    private Task DisputeAfterReleaseAsync(Sender e)
    {
        var s = e.Created ? _sim.Storage.Get<EscrowState>("escrow", e.Grain.GetGrainId()) : null;
        var pi = _stripe.IntentOf(e.Id);
        if (!_faults.Enabled || s is not { Status: EscrowStatus.Released, DisputeId: null } || pi is null)
        {
            return Task.CompletedTask;
        }
        lock (_stripe.Gate)
        {
            if (!_stripe.Disputes.TryAdd(pi.Id, "open"))
            {
                return Task.CompletedTask;
            }
        }
        _faults.Count(FaultKind.DisputeAfterRelease);
        var dispute = $"dp_r{e.Index}";
        var won = Chance(0.5);
        At(Now + Minutes(60, 1440), () =>
        {
            lock (_stripe.Gate)
            {
                if (won)
                {
                    _stripe.Disputes.Remove(pi.Id);
                }
                else
                {
                    _stripe.Disputes[pi.Id] = "lost";
                }
            }
            return DeliverAsync(e, new PaymentEvent(PaymentEventKind.DisputeClosed, dispute, 0, null, won ? "won" : "lost"), "dispute_closed");
        });
        return DeliverAsync(e, new PaymentEvent(PaymentEventKind.DisputeOpened, dispute, 0, null, null), "dispute");
    }

    private void PlanReply(Sender e, DateTimeOffset receivedAt)
    {
        var deliverAt = Fault(FaultKind.DelayedEvent) ? receivedAt + Minutes(1, 60) : receivedAt;
        At(deliverAt, () => ReplyAsync(e, receivedAt, "email"));
        if (Fault(FaultKind.DuplicateEvent))
        {
            At(deliverAt + Minutes(0, 90), () => ReplyAsync(e, receivedAt + Minutes(0, 5), "platform"));
        }
    }

    private void PlanChaos()
    {
        var end = _t0 + TimeSpan.FromHours(80);
        // Operators: act now and then on a random escrow with a random action (most are refused by the machine).
        for (var i = 0; i < _settings.Escrows / 8; i++)
        {
            var e = _escrows[_rng.Next(_escrows.Count)];
            var kind = (OperatorActionKind)_rng.Next(5);
            At(_t0 + TimeSpan.FromTicks((long)(_rng.NextDouble() * (end - _t0).Ticks)), () => OperateAsync(e, kind));
        }
        // Reminder sweeps: the clock moves in small steps, sometimes in a big jump.
        for (var t = _t0 + Minutes(1, 20); t < end;)
        {
            At(t, () => Task.CompletedTask);
            t += Fault(FaultKind.ClockJump) ? Minutes(60, 360) : Minutes(2, 30);
        }
    }
}
