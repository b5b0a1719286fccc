namespace Escrow.Grains.Domain;

// Capturing, transferring the recipient's share, and effects that failed.
public sealed partial class EscrowMachine
{
    private static Decision OnCaptured(EscrowState s, Captured c, DateTimeOffset now)
    {
        if (!HasEffect(s, c.EffectId, EffectKind.CapturePayment))
        {
            return Decision.Reject(s, Rejection.UnknownEffect);
        }
        var captured = Record(RemoveEffect(s, c.EffectId) with { ChargeId = c.ChargeId }, now, "captured", s.Amount.Minor, c.ChargeId);
        return StartTransfer(captured, now);
    }

    private static Decision OnCaptureRejected(EscrowState s, CaptureRejected r, DateTimeOffset now)
    {
        if (!HasEffect(s, r.EffectId, EffectKind.CapturePayment))
        {
            return Decision.Reject(s, Rejection.UnknownEffect);
        }
        var stuck = Record(RemoveEffect(s, r.EffectId) with { NeedsOperator = true, LastError = r.Code }, now, "capture_rejected",
            detail: r.Code);
        return Decision.Accept(Alert(stuck, AlertKind.MoneyEffectRejected,
            $"Stripe refused the capture of escrow {s.Id} for good ({r.Code}); refund it with POST /v1/admin/escrows/{s.Id}/refund."));
    }

    /// <summary>
    /// Stripe would not take the share back (typically the connected account's balance does not cover it): the refund
    /// that was to follow is not made, so the platform does not pay twice. A refund after release goes back to released.
    /// </summary>
    private static Decision ReversalRejected(EscrowState s, PendingEffect effect, string code, DateTimeOffset now)
    {
        if (s.Status == EscrowStatus.Released && s.DisputeStatus is DisputeStatus.Won or DisputeStatus.Resolved)
        {
            // The dispute it was for has ended: the share stays with the recipient, which is what the end of it wants.
            // Not a refusal an operator must act on (those are "*_rejected", with an alert): nothing is left to do.
            var kept = RemoveEffect(s, effect.Id) with
            {
                LastError = code,
                MoneyKeyAttemptFloor = Math.Max(s.MoneyKeyAttemptFloor, effect.KeyAttempt + 1),
            };
            return Decision.Accept(Record(kept, now, "share_kept", detail: code));
        }
        var stopped = RemoveEffect(s, effect.Id) with
        {
            NeedsOperator = true,
            LastError = code,
            MoneyKeyAttemptFloor = Math.Max(s.MoneyKeyAttemptFloor, effect.KeyAttempt + 1),
        };
        stopped = s.Status == EscrowStatus.RefundPending
            ? Transition(stopped, EscrowStatus.Released, now, "reversal_rejected", detail: code)
            : Record(stopped, now, "reversal_rejected", detail: code);
        var why = code == "balance_insufficient" ? "the recipient's connected account has too small a balance to cover it"
            : "Stripe's code says why";
        var refund = s.Status == EscrowStatus.RefundPending
            ? $" The refund was not made: the sender is not refunded. Try again with POST /v1/admin/escrows/{s.Id}/refund once the "
                + $"balance covers it, or refund the sender from the platform's own balance in Stripe."
            : "";
        return Decision.Accept(Alert(stopped, AlertKind.MoneyEffectRejected,
            $"Stripe refused the reversal of transfer {s.TransferId} of escrow {s.Id} for good ({code}: {why}).{refund}"));
    }

    /// <summary>
    /// An effect failed. Refused for good, a money movement back to the sender (a cancel, a refund, a transfer reversal)
    /// ends for an operator (<see cref="MoneyMovementRefused"/>) and an e-mail is dropped with an alert (the address is
    /// refused: it never blocks money); every other failure is tried again with backoff (<see cref="RetryLater"/>): the
    /// machine never drops work it has no rule to end.
    /// </summary>
    private Decision OnEffectFailed(EscrowState s, EffectFailed f, DateTimeOffset now)
    {
        var effect = s.Outbox.FirstOrDefault(e => e.Id == f.EffectId);
        if (effect is null)
        {
            return Decision.Reject(s, Rejection.UnknownEffect);
        }
        return (f.Permanent, effect.Kind) switch
        {
            (true, var kind) when kind.MovesMoneyBack() => MoneyMovementRefused(s, effect, f.Error, now),
            (true, EffectKind.SendEmail) => Decision.Accept(Alert(RemoveEffect(s, effect.Id), AlertKind.EmailRejected,
                $"Postmark refused the {effect.Email} e-mail of escrow {s.Id} for good ({f.Error}); it is not sent again.")),
            _ => RetryLater(s, effect, f.Error, now),
        };
    }

    /// <summary>
    /// Schedules another try with bounded backoff. An e-mail that keeps failing is dropped with an alert (it never
    /// blocks money); any other effect keeps trying at the longest delay and raises one alert.
    /// </summary>
    private Decision RetryLater(EscrowState s, PendingEffect e, string error, DateTimeOffset now)
    {
        var attempts = e.Attempts + 1;
        var retry = Policy.EffectRetry;
        // A failed call's key is not used again (Stripe may have saved the failure under it): the next try reads first.
        var keyAttempt = e.Kind.HasOwnKeyAttempts() ? e.KeyAttempt + 1 : e.KeyAttempt;
        var next = s with
        {
            Outbox = s.Outbox.Replace(e,
                e with { Attempts = attempts, NotBefore = now + retry.DelayAfter(attempts), KeyAttempt = keyAttempt }),
            LastError = error,
        };
        if (attempts != retry.MaxAttempts)
        {
            return Decision.Accept(next);
        }
        var detail = $"{e.Kind} {e.Email} failed {attempts} times: {error}";
        return Decision.Accept(e.Kind == EffectKind.SendEmail
            ? Alert(RemoveEffect(next, e.Id), AlertKind.EmailFailed, detail)
            : Alert(next, AlertKind.EffectRetrying, detail));
    }

    /// <summary>
    /// Stripe refused a cancel or a refund for good: asking again would get the same answer (and its key replays it), so
    /// the effect ends here. The history keeps Stripe's code, an operator is alerted and must act; an operator's refund
    /// or release starts the money movement again under a key Stripe has not seen.
    /// </summary>
    private static Decision MoneyMovementRefused(EscrowState s, PendingEffect effect, string code, DateTimeOffset now)
    {
        if (effect.Kind == EffectKind.ReverseTransfer)
        {
            return ReversalRejected(s, effect, code, now);
        }
        var operation = effect.Kind == EffectKind.CancelPaymentIntent ? "cancel" : "refund";
        var stopped = RemoveEffect(s, effect.Id) with
        {
            // A finished escrow (a stray authorisation's cancel) has no action left to clear the flag: the alert is the task.
            NeedsOperator = s.NeedsOperator || !s.IsTerminal,
            LastError = code,
            MoneyKeyAttemptFloor = Math.Max(s.MoneyKeyAttemptFloor, effect.KeyAttempt + 1),
        };
        stopped = Record(stopped, now, $"{operation}_rejected", detail: code);
        var next = s.Status == EscrowStatus.RefundPending
            ? $"retry it with POST /v1/admin/escrows/{s.Id}/refund, or pay the recipient with POST /v1/admin/escrows/{s.Id}/release"
            : $"it is not retried; settle the payment {s.PaymentIntentId} in Stripe's dashboard";
        return Decision.Accept(Alert(stopped, AlertKind.MoneyEffectRejected,
            $"Stripe refused the {operation} of escrow {s.Id} for good ({code}): {next}."));
    }

    private static Decision StartTransfer(EscrowState s, DateTimeOffset now)
    {
        if (s.Outbox.Any(e => e.Kind == EffectKind.TransferShare))
        {
            return Decision.Accept(s);
        }
        var started = (s.FirstTransferAttemptAt is null ? s with { FirstTransferAttemptAt = now } : s) with { PayoutCheckAt = null };
        return Decision.Accept(AddEffect(RemoveEffects(started, EffectKind.AwaitPayoutSetup), EffectKind.TransferShare));
    }

    private static Decision OnTransferred(EscrowState s, Transferred t, DateTimeOffset now)
    {
        if (!HasEffect(s, t.EffectId, EffectKind.TransferShare))
        {
            return Decision.Reject(s, Rejection.UnknownEffect);
        }
        var released = RemoveEffect(s, t.EffectId) with { TransferId = t.TransferId, RecipientAccountId = t.DestinationAccountId,
            NeedsOperator = false };
        released = Transition(released, EscrowStatus.Released, now, t.Adopted ? "transfer_adopted" : "transferred",
            s.Split.RecipientShare.Minor, t.TransferId);
        // The share transferred again after a dispute was won: the recipient was told of the payout the first time.
        return Decision.Accept(s.ReversedTransferId is null ? Email(released, EmailKind.PayoutSent) : released);
    }

    /// <summary>A transfer whose answer we lost, reported by Stripe's webhook: adopt it rather than pay again.</summary>
    private static Decision AdoptReportedTransfer(EscrowState s, TransferReported t, DateTimeOffset now)
    {
        var released = RemoveEffects(s, EffectKind.TransferShare) with
        {
            TransferId = t.TransferId,
            RecipientAccountId = t.DestinationAccountId,
            NextTransferAttemptAt = null,
            NeedsOperator = false,
        };
        released = Transition(released, EscrowStatus.Released, now, "transfer_adopted", t.AmountMinor, t.TransferId);
        return Decision.Accept(s.ReversedTransferId is null ? Email(released, EmailKind.PayoutSent) : released);
    }

    /// <summary>
    /// A refund of a captured payment found that a transfer was made after all (its answer had been lost): the
    /// recipient has the money, so the refund is not made; the escrow is released and an operator is told.
    /// </summary>
    private static Decision RefundOvertakenByTransfer(EscrowState s, TransferReported t, DateTimeOffset now)
    {
        var adopted = AdoptReportedTransfer(RemoveEffects(s, EffectKind.RefundPayment), t, now).State;
        return Decision.Accept(Alert(adopted, AlertKind.RefundNotMade,
            $"The refund was not made: Stripe already has transfer {t.TransferId} ({t.AmountMinor}) to the recipient, so the escrow is "
                + $"released. Reverse the transfer by hand if the sender must still be refunded."));
    }

    private Decision OnTransferRejected(EscrowState s, TransferRejected r, DateTimeOffset now)
    {
        if (!HasEffect(s, r.EffectId, EffectKind.TransferShare))
        {
            return Decision.Reject(s, Rejection.UnknownEffect);
        }
        var failures = s.TransferFailures + 1;
        var failed = RemoveEffect(s, r.EffectId) with
        {
            TransferFailures = failures,
            LastError = r.Code,
            // Stripe replays a saved failure to every retry with the same key, so each try has its own; the next try
            // looks the transfer group up first, so a transfer made behind a lost answer is adopted, not made twice.
            TransferKeyAttempt = s.TransferKeyAttempt + 1,
        };
        if (Policy.TransferRetry.IsExhausted(failures))
        {
            failed = Transition(failed with { NextTransferAttemptAt = null, NeedsOperator = true }, EscrowStatus.TransferFailed, now,
                "transfer_failed", detail: r.Code);
            return Decision.Accept(Alert(failed, AlertKind.TransferRetriesExhausted,
                $"The transfer failed {failures} times (last: {r.Code}); retry with POST /v1/admin/escrows/{s.Id}/retry-transfer."));
        }
        var next = now + Policy.TransferRetry.DelayAfter(failures);
        return Decision.Accept(Transition(failed with { NextTransferAttemptAt = next }, EscrowStatus.TransferFailed, now, "transfer_failed",
            detail: r.Code));
    }

    private Decision AwaitPayoutSetup(EscrowState s, RecipientNotReady r, DateTimeOffset now)
    {
        if (!HasEffect(s, r.EffectId, EffectKind.TransferShare))
        {
            return Decision.Reject(s, Rejection.UnknownEffect);
        }
        var waiting = Transition(RemoveEffect(s, r.EffectId) with { PayoutCheckAt = now + Policy.PayoutCheckPeriod },
            EscrowStatus.PendingUserSetup, now, "awaiting_payout_setup");
        return Decision.Accept(Email(AddEffect(waiting, EffectKind.AwaitPayoutSetup), EmailKind.PendingPayoutSetup));
    }

    /// <summary>
    /// The escrow's own periodic check while it waits: ask the recipient again (which also puts it back on the
    /// recipient's waiting list). No history entry: nothing happened yet.
    /// </summary>
    private Decision CheckPayoutSetup(EscrowState s, DateTimeOffset now)
    {
        var next = s with { PayoutCheckAt = now + Policy.PayoutCheckPeriod };
        return Decision.Accept(next.Outbox.Any(e =>
            e.Kind == EffectKind.AwaitPayoutSetup) ? next : AddEffect(next, EffectKind.AwaitPayoutSetup));
    }
}
