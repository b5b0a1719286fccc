namespace Escrow.Simulation;

// The invariants checked once the system has settled, against the fake Stripe, the store and the grain states.
public sealed partial class SimulationRun
{
    private void Violation(string what) => _result.Violations.Add(what);

    // ---------------------------------------------------------------- invariants

    private async Task CheckAsync()
    {
        var alerts = await _sim.Store.Inner.ListAlertsAsync(openOnly: true, limit: 10_000);
        var allAlerts = await _sim.Store.Inner.ListAlertsAsync(openOnly: false, limit: 10_000);
        foreach (var e in _escrows.Where(e => e.Created))
        {
            var s = _sim.Storage.Get<EscrowState>("escrow", e.Grain.GetGrainId());
            var pi = _stripe.IntentOf(e.Id);
            var transfers = _stripe.TransfersOf(e.Id);
            var tag = $"escrow #{e.Index} {e.Id}";
            if (s is null || !s.Exists)
            {
                if (pi is not null)
                {
                    Violation($"{tag}: Stripe has {pi.Id} but the escrow was never stored");
                }
                continue;
            }
            var status = s.Status.ToWire();
            _result.FinalStatuses[status] = _result.FinalStatuses.GetValueOrDefault(status) + 1;
            tag += $" ({status})";

            // Money: at most one capture and one transfer; never captured and cancelled; transfer + fee == captured.
            if (pi is not null)
            {
                if (pi.Captures > 1)
                {
                    Violation($"{tag}: captured {pi.Captures} times");
                }
                if (pi.Captures > 0 && pi.Cancels > 0)
                {
                    Violation($"{tag}: both captured and cancelled");
                }
                // A cancel Stripe refused for good leaves the authorisation for an operator (alert money_effect_rejected).
                if (s.IsTerminal && pi.Status == "requires_capture" && !s.History.Any(h => h.Event == "cancel_rejected"))
                {
                    Violation($"{tag}: terminal, but its authorisation {pi.Id} is still held; history: {string.Join(" ", s.History.Select(h => h.Event + "@" + h.At.ToString("dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture)))}; outbox [{string.Join(", ", s.Outbox.Select(x => x.Kind))}], PI {s.PaymentIntentId}");
                }
                if (pi.Captures > 0 && s.Status is EscrowStatus.Cancelled or EscrowStatus.PaymentFailed)
                {
                    Violation($"{tag}: captured, but {status}");
                }
                if (pi.Captures > 0 && s.Status == EscrowStatus.Refunded && pi.Refunds == 0)
                {
                    Violation($"{tag}: captured and refunded in the ledger, but no refund in Stripe");
                }
            }
            // Reversals: what the recipient keeps never exceeds their share (a share reversed, then transferred again
            // after a won dispute, is paid once), and a refund never leaves a transfer in place (reversal first).
            var kept = transfers.Sum(t => t.AmountMinor) - transfers.Sum(t => t.AmountReversedMinor);
            if (kept > s.Split.RecipientShare.Minor)
            {
                Violation($"{tag}: transferred minus reversed is {kept}, over the recipient's share {s.Split.RecipientShare.Minor}");
            }
            if (pi?.Refunds > 0 && transfers.Any(t => !t.Reversed))
            {
                Violation($"{tag}: refunded while transfer {transfers.First(t => !t.Reversed).Id} was not reversed: paid out twice");
            }
            // A money movement Stripe refused for good ends the effect: an alert, and the escrow waits for an operator.
            var refusal = s.History.LastOrDefault(h => h.Event is "cancel_rejected" or "refund_rejected" or "capture_rejected" or "reversal_rejected");
            if (refusal is not null)
            {
                if (!allAlerts.Any(a => a.EscrowId == e.Id && a.Kind == "money_effect_rejected"))
                {
                    Violation($"{tag}: Stripe refused a money movement for good ({refusal.Event} {refusal.Detail}) but no money_effect_rejected alert was raised");
                }
                if (s.History[^1] == refusal && !s.IsTerminal && !s.NeedsOperator)
                {
                    Violation($"{tag}: {refusal.Event} ({refusal.Detail}) is its last event, but it does not wait for an operator");
                }
            }
            // A transfer the escrow took back (a refund after release) pays nothing: the money went back to the sender.
            foreach (var r in transfers.Where(t => t.Reversed))
            {
                // Or still waiting: a refund does not run while a dispute is open (Stripe refuses to refund a disputed charge).
                // Its history names every reversal it made: a share reversed for a dispute, transferred again when the
                // dispute was won or resolved, can be reversed again by a later refund (ReversedTransferId is the last).
                var reversedByEscrow = s.ReversedTransferId == r.Id
                    || s.History.Any(h => h.Event == "share_reversed" && h.Detail?.EndsWith(" of " + r.Id, StringComparison.Ordinal) == true);
                // Or paid again: a refund refused after the reversal, then an operator's release (the share checks below
                // still ask for exactly one live transfer, and that it is the escrow's).
                var paidAgain = s.Status == EscrowStatus.Released && s.TransferId != r.Id && transfers.Any(t => t.Id == s.TransferId && !t.Reversed);
                if (!reversedByEscrow || !((s.Status == EscrowStatus.Refunded && pi?.Refunds > 0) || s.NeedsOperator || s.DisputeStatus is not null || paidAgain))
                {
                    Violation($"{tag}: transfer {r.Id} was reversed, but the escrow is {status} (reversed {s.ReversedTransferId}, {pi?.Refunds} refunds); history: {string.Join(" ", s.History.Select(h => h.Event + "@" + h.At.ToString("dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture)))}; outbox [{string.Join(", ", s.Outbox.Select(x => $"{x.Kind}@{x.NotBefore:O}"))}], dispute open {s.DisputeOpen}, last error {s.LastError}");
                }
            }
            transfers = [.. transfers.Where(t => !t.Reversed)];
            if (transfers.Count > 1)
            {
                Violation($"{tag}: {transfers.Count} transfers ({string.Join(", ", transfers.Select(t => t.Id))})");
            }
            if (transfers.Count > 0)
            {
                var t = transfers[0];
                if (pi is null || t.AmountMinor + s.Split.PlatformFee.Minor != pi.CapturedMinor)
                {
                    Violation($"{tag}: transfer {t.AmountMinor} + fee {s.Split.PlatformFee.Minor} != captured {pi?.CapturedMinor}");
                }
                if (s.Status != EscrowStatus.Released || s.TransferId != t.Id)
                {
                    Violation($"{tag}: Stripe has transfer {t.Id} but the escrow records {s.TransferId}; history: {string.Join(" ", s.History.Select(h => h.Event + "@" + h.At.ToString("dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture)))}; last error {s.LastError}; next transfer attempt {s.NextTransferAttemptAt:O}, failures {s.TransferFailures}, outbox [{string.Join(", ", s.Outbox.Select(x => $"{x.Kind}@{x.NotBefore:O}"))}], now {Now:O}, reminder {await HasReminderAsync(e.Grain)}");
                }
            }
            // A dispute may have taken the share back (Disputes:ReverseTransfer): then no transfer is left to the recipient.
            if (s.Status == EscrowStatus.Released && (transfers.Count != (s.ShareReversed && s.DisputeStatus is not null ? 0 : 1) || pi?.Status != "succeeded" || pi.Refunds > 0))
            {
                Violation($"{tag}: released without exactly one transfer from a captured, unrefunded payment");
            }
            if (s.Status == EscrowStatus.Refunded && pi is not null && pi.Status == "requires_capture")
            {
                Violation($"{tag}: refunded but the authorisation is still held");
            }

            // The ledger, the projection, the stored state and the live activation agree.
            var ledger = await _sim.Store.Inner.GetLedgerAsync(e.Id);
            var projection = await _sim.Store.Inner.GetEscrowAsync(e.Id);
            if (ledger.Count != s.History.Length || ledger.Select(l => l.Seq).Where((seq, i) => seq != i + 1).Any())
            {
                Violation($"{tag}: the ledger has {ledger.Count} rows, the history {s.History.Length} ({string.Join(" ", s.History.Select(h => h.Event + "@" + h.At.ToString("dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture)))}); outbox [{string.Join(", ", s.Outbox.Select(x => $"{x.Kind}@{x.NotBefore:O}"))}], last error {s.LastError}, now {Now:O}, reminder {await HasReminderAsync(e.Grain)}");
            }
            else if (ledger.Count > 0 && ledger[^1].Status != status)
            {
                Violation($"{tag}: the last ledger row says {ledger[^1].Status}");
            }
            if (projection is null || projection.Status != status || projection.Version != s.History.Length)
            {
                Violation($"{tag}: the projection says {projection?.Status} v{projection?.Version}, the state v{s.History.Length}");
            }
            var view = await Harness(() => e.Grain.GetAsync());
            if (view?.Status != status)
            {
                Violation($"{tag}: the activation says {view?.Status}, the stored state {status}");
            }

            // Liveness: terminal, or waiting with a reminder that will move it, or in an operator's hands (open alert).
            var due = EscrowMachine.NextDueAt(s);
            if (due is not null && !await HasReminderAsync(e.Grain))
            {
                Violation($"{tag}: work is due at {due:O} ({s.Outbox.Length} effects) but no reminder is registered");
            }
            var alerted = alerts.Any(a => a.EscrowId == e.Id);
            var waitingForPayee = WaitingForPayee(s);
            if (!s.IsTerminal && !alerted && !waitingForPayee)
            {
                var rs = _sim.Storage.Get<Escrow.Grains.RecipientState>("recipient", _sim.Grains.GetGrain<IRecipientGrain>(s.RecipientId).GetGrainId());
                Violation($"{tag}: stuck after settling (next due {due:O}, outbox [{string.Join(", ", s.Outbox.Select(x => x.Kind))}], last error {s.LastError}); recipient: payouts enabled {rs?.PayoutsEnabled}, lists it {rs?.AwaitingPayoutSetup.Contains(s.Id)}, poll reminder {await HasReminderAsync(_sim.Grains.GetGrain<IRecipientGrain>(s.RecipientId))}; history: {string.Join(" ", s.History.Select(h => h.Event + "@" + h.At.ToString("HH:mm", System.Globalization.CultureInfo.InvariantCulture)))}");
            }
            if (s.IsTerminal && s.Outbox.Any(x => x.Kind != EffectKind.RaiseAlert && x.Kind != EffectKind.SendEmail))
            {
                Violation($"{tag}: terminal with effects left: {string.Join(", ", s.Outbox.Select(x => x.Kind))}");
            }
            // A reply received by the deadline, to a held escrow nobody else decided for (an operator, a dispute, a
            // voided card), ends released, whatever crashed while it was handled.
            if (e.TimelyReplyDeliveredAt is { } delivered
                && !s.History.Any(h => h.Event is "dispute_opened" or "authorisation_voided" or "operator_refund" or "capture_rejected" or "operator_cancel")
                && (!s.History.Any(h => h.Event == "reply_accepted") || s.Status is EscrowStatus.Refunded or EscrowStatus.RefundPending))
            {
                Violation($"{tag}: a reply received at {e.TimelyReplyReceivedAt:O} (delivered {delivered:O}, reply deadline {s.ReplyDeadline:O}) did not end released; history: {string.Join(" ", s.History.Select(h => h.Event + "@" + h.At.ToString("dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture)))}");
            }
            // Every permit an escrow records was granted by the breaker (the ledger counts them per window below).
            if (s.History.Any(h => h.Event == "refund_permit_granted") && !s.RefundApproved && !_sim.Breaker.HasGranted(e.Id))
            {
                Violation($"{tag}: recorded a refund permit the breaker never granted");
            }
        }

        // A refusal is saved under its idempotency key and replayed: once the escrow has recorded it, asking again with
        // that key is a retry loop. (Before, one more request is a re-drive after the answer was lost with a write.)
        List<(string Key, List<DateTimeOffset> At)> refused;
        lock (_stripe.Gate)
        {
            refused = [.. _stripe.RefusedRequests.Select(r => (r.Key, r.Value.ToList()))];
        }
        foreach (var (key, at) in refused)
        {
            var parts = key.Split('/');
            var owner = Guid.TryParse(parts[1], out var id) ? _escrows.FirstOrDefault(x => x.Id == id && x.Created) : null;
            var state = owner is null ? null : _sim.Storage.Get<EscrowState>("escrow", owner.Grain.GetGrainId());
            var evt = (parts[2] == "reversal" ? "reversal" : parts[2]) + "_rejected";
            var recorded = state?.History.FirstOrDefault(h => h.Event == evt && h.At >= at[0]);
            if (recorded is not null && at.Count(t => t > recorded.At) > 0)
            {
                Violation($"Stripe refused {key} for good; the escrow recorded it at {recorded.At:O} and asked again {at.Count(t => t > recorded.At)} times after");
            }
        }
        // Refund permits per breaker window never exceed the caps, each counted in the window the breaker granted it in.
        foreach (var v in _sim.Breaker.Violations(SimulationCluster.BreakerWindow, SimulationCluster.RefundsPerWindowMax, SimulationCluster.RefundAmountPerWindowMaxMinor))
        {
            Violation(v);
        }
        foreach (var v in _sim.Emails.Violations)
        {
            Violation(v);
        }
        var breaker = await Harness(() => _sim.Grains.GetGrain<ICircuitBreakerGrain>(0).GetAsync());
        var tripAlerts = (await _sim.Store.Inner.ListAlertsAsync(openOnly: false, limit: 10_000)).Count(a => a.Kind == "circuit_breaker_tripped");
        // Every stored trip has its alert. (An alert may also stand for a trip whose own write then failed.)
        if (tripAlerts < breaker.Trips)
        {
            Violation($"the breaker tripped {breaker.Trips} times but raised {tripAlerts} alerts");
        }
    }
}
