namespace Escrow.Simulation;

// The actions the plan schedules: what a sender, Stripe, an operator and a recipient do, each guarded against the faults injected.
public sealed partial class SimulationRun
{
    // ---------------------------------------------------------------- actions

    private async Task Guarded(Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (Exception ex) when (ex.Message.Contains("broke an invariant", StringComparison.Ordinal))
        {
            Violation($"a grain refused to break an invariant: {ex.Message}");
        }
        catch (Exception)
        {
            // A fault surfaced to the caller (an API call would answer 5xx): callers retry on their own schedule.
            _result.FailedCalls++;
        }
        _result.Steps++;
    }

    private async Task CreateAsync(Sender e, int attempt)
    {
        var request = new CreateEscrow(e.RecipientId, $"sender{e.Index}@example.com", e.Window, "Subject", $"Message {e.Index} of seed {_seed}.", e.PaymentMethod, e.RequestHash);
        try
        {
            var result = await e.Grain.CreateAsync(request);
            e.Created = true;
            e.ClientSecret = result.View?.ClientSecret ?? e.ClientSecret;
            if (Fault(FaultKind.DuplicateEvent))
            {
                // The sender's browser retries with the same Idempotency-Key.
                At(Now + Minutes(0, 10), () => CreateAsync(e, attempt + 1));
            }
        }
        catch (Exception) when (attempt < 5)
        {
            e.Created = true;
            _result.FailedCalls++;
            // The sender retries with the same Idempotency-Key, or gives up.
            if (Chance(0.5))
            {
                At(Now + Minutes(0, 30), () => CreateAsync(e, attempt + 1));
            }
        }
    }

    private async Task ConfirmAsync(Sender e)
    {
        if (e.ClientSecret is null)
        {
            // The sender never got the client secret (the create answer was lost): it asks for the escrow again.
            try
            {
                e.ClientSecret = (await e.Grain.GetAsync())?.ClientSecret;
            }
            catch (Exception)
            {
                _result.FailedCalls++;
            }
            if (e.ClientSecret is null)
            {
                return;
            }
        }
        lock (_stripe.Gate)
        {
            var pi = _stripe.PaymentIntents.Values.FirstOrDefault(p => p.Id + "_secret" == e.ClientSecret);
            if (pi is null || pi.Status != "requires_payment_method")
            {
                return;
            }
            pi.Status = "requires_capture";
            _stripe.Authorised.Add(pi);
        }
    }

    /// <summary>A Stripe event for the escrow: delivered, retried while the handler fails, maybe twice and late.</summary>
    private Task DeliverAsync(Sender e, PaymentEvent evt, string what, int attempt = 0)
    {
        ScheduleDelivery(e, evt, what, Now, attempt);
        return Task.CompletedTask;
    }

    private void ScheduleDelivery(Sender e, PaymentEvent evt, string what, DateTimeOffset from, int attempt)
    {
        var at = from + (Fault(FaultKind.DelayedEvent) ? Minutes(1, 180) : Minutes(0, 2));
        At(at, () => HandleEventAsync(e, evt, what, attempt));
        if (attempt == 0 && Fault(FaultKind.DuplicateEvent))
        {
            At(at + Minutes(0, 240), () => HandleEventAsync(e, evt, what, attempt));
        }
    }

    private async Task HandleEventAsync(Sender e, PaymentEvent evt, string what, int attempt)
    {
        try
        {
            await e.Grain.HandlePaymentEventAsync(evt);
        }
        catch (Exception ex) when (!ex.Message.Contains("broke an invariant", StringComparison.Ordinal))
        {
            _result.FailedCalls++;
            if (attempt < 12)
            {
                // The webhook answered 5xx: Stripe delivers again later.
                At(Now + Minutes(1, 60), () => HandleEventAsync(e, evt, what, attempt + 1));
            }
        }
    }

    private async Task ReplyAsync(Sender e, DateTimeOffset receivedAt, string source, int attempt = 0)
    {
        var messageId = $"sim-{_seed}-{e.Index}-{receivedAt.UtcTicks}";
        try
        {
            if (source == "email" && attempt == 0)
            {
                // What the inbound endpoint does first: the receipt is durable before the reply is judged.
                await _sim.Store.Inner.RecordInboundReceiptAsync(new InboundMessageRecord(messageId, e.Id, "recipient@example.com", "Re", receivedAt, false, false, InboundMessageRecord.Pending, ""));
                if (e.Created && receivedAt <= Now && _sim.Storage.Get<EscrowState>("escrow", e.Grain.GetGrainId()) is { Status: EscrowStatus.Held } held
                    && Now < held.ReplyDeadline && receivedAt <= held.ReplyDeadline)
                {
                    e.TimelyReplyDeliveredAt ??= Now;
                    e.TimelyReplyReceivedAt = receivedAt;
                }
            }
            var result = await e.Grain.AcceptReplyAsync(new ReplyReceived(receivedAt, source, source == "email" ? "Here is my answer." : null));
            if (source == "email")
            {
                await _sim.Store.Inner.RecordInboundMessageAsync(new InboundMessageRecord(messageId, e.Id, "recipient@example.com", "Re", receivedAt, true, false, result.RejectionCode, ""));
            }
        }
        catch (Exception ex) when (!ex.Message.Contains("broke an invariant", StringComparison.Ordinal))
        {
            _result.FailedCalls++;
            if (attempt < 8)
            {
                // Postmark retries an inbound webhook that failed; the platform UI's user clicks again.
                At(Now + Minutes(1, 30), () => ReplyAsync(e, receivedAt, source, attempt + 1));
            }
        }
    }

    private async Task OperateAsync(Sender e, OperatorActionKind kind)
    {
        if (!e.Created)
        {
            return;
        }
        await e.Grain.OperateAsync(new OperatorAction(kind, "simulation", "sim-admin"));
    }

    private async Task ReverseTransferAsync(Sender e)
    {
        var transfer = _stripe.TransfersOf(e.Id).FirstOrDefault();
        if (transfer is not null)
        {
            await DeliverAsync(e, new PaymentEvent(PaymentEventKind.TransferReversed, transfer.Id, transfer.AmountMinor, "eur", null), "transfer_reversed");
        }
    }

    private Task FinishOnboardingAsync(Payee r)
    {
        lock (_stripe.Gate)
        {
            _stripe.Accounts[r.AccountId!] = true;
        }
        r.Enabled = true;
        if (Chance(0.85))
        {
            var at = Now + (Fault(FaultKind.DelayedEvent) ? Minutes(1, 600) : Minutes(0, 2));
            At(at, () => AccountUpdatedAsync(r, true, 0));
            if (Fault(FaultKind.DuplicateEvent))
            {
                At(at + Minutes(0, 120), () => AccountUpdatedAsync(r, true, 0));
            }
        }
        if (Fault(FaultKind.StaleAccountEvent))
        {
            // An older account.updated (payouts not yet enabled) arrives after the newer one.
            At(Now + Minutes(1, 300), () => AccountUpdatedAsync(r, false, 0));
        }
        return Task.CompletedTask;
    }

    private async Task AccountUpdatedAsync(Payee r, bool enabled, int attempt)
    {
        try
        {
            await _sim.Grains.GetGrain<IRecipientGrain>(r.Id).AccountUpdatedAsync(r.AccountId!, enabled);
        }
        catch (Exception ex) when (attempt < 12 && !ex.Message.Contains("broke an invariant", StringComparison.Ordinal))
        {
            _result.FailedCalls++;
            At(Now + Minutes(1, 60), () => AccountUpdatedAsync(r, enabled, attempt + 1));
        }
    }
}
