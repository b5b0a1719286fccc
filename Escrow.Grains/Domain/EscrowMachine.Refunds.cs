namespace Escrow.Grains.Domain;

// Giving the money back: the breaker's permit, the cancel or refund, after a release, and disputes.
public sealed partial class EscrowMachine
{
    private static Decision RequestRefund(EscrowState s, DateTimeOffset now) =>
        Decision.Accept(AddEffect(Transition(s, EscrowStatus.RefundPending, now, "deadline_passed"), EffectKind.RequestRefundPermit));

    private Decision AnswerPermit(EscrowState s, RefundPermitAnswered a, DateTimeOffset now)
    {
        if (!HasEffect(s, a.EffectId, EffectKind.RequestRefundPermit))
        {
            return Decision.Reject(s, Rejection.UnknownEffect);
        }
        var answered = RemoveEffect(s, a.EffectId);
        return a.Outcome switch
        {
            RefundPermit.Granted => CancelAuthorisation(Record(answered, now, "refund_permit_granted")),
            RefundPermit.Denied => Decision.Accept(Record(answered with { NextPermitRequestAt = now + Policy.PermitRetryDelay }, now,
                "refund_permit_denied")),
            RefundPermit.NeedsApproval =>
                Decision.Accept(Alert(Record(answered with { RefundAwaitingApproval = true }, now, "refund_needs_approval"),
                    AlertKind.RefundNeedsApproval,
                $"A refund of {s.Amount.Minor} {s.Amount.Currency} exceeds the circuit breaker's whole window cap; approve it with POST "
                    + $"/v1/admin/escrows/{s.Id}/approve-refund.")),
            _ => throw new ArgumentOutOfRangeException(nameof(a), a.Outcome, null),
        };
    }

    private static Decision RetryPermit(EscrowState s, DateTimeOffset now)
    {
        if (s.NextPermitRequestAt is not { } due || s.RefundAwaitingApproval || RefundStarted(s) || s.Outbox.Any(e =>
            e.Kind == EffectKind.RequestRefundPermit))
        {
            return Decision.Reject(s, Rejection.AlreadyDone);
        }
        if (now < due)
        {
            return Decision.Reject(s, Rejection.NotDueYet);
        }
        return Decision.Accept(AddEffect(s with { NextPermitRequestAt = null }, EffectKind.RequestRefundPermit));
    }

    private static Decision CancelAuthorisation(EscrowState s) =>
        Decision.Accept(AddEffect(RemoveEffects(s with { NextPermitRequestAt = null, RefundAwaitingApproval = false },
            EffectKind.RequestRefundPermit), EffectKind.CancelPaymentIntent,
            keyAttempt: s.MoneyKeyAttemptFloor));

    private static Decision RefundCaptured(EscrowState s, string reason, DateTimeOffset now)
    {
        var pending = Transition(RemoveEffects(s with { NextTransferAttemptAt = null }, EffectKind.TransferShare,
            EffectKind.AwaitPayoutSetup), EscrowStatus.RefundPending, now, "operator_refund", detail: reason);
        return Decision.Accept(AddEffect(pending, EffectKind.RefundPayment, keyAttempt: s.MoneyKeyAttemptFloor));
    }

    private static Decision Refunded(EscrowState s, DateTimeOffset now, string evt, string? detail)
    {
        var refunded = Transition(s with { NextPermitRequestAt = null, RefundAwaitingApproval = false }, EscrowStatus.Refunded, now, evt,
            s.Amount.Minor, detail);
        return Decision.Accept(RefundEmails(refunded, CauseOf(s)));
    }

    /// <summary>The sender's refund e-mail and the recipient's missed-opportunity e-mail, both written for the cause.</summary>
    private static EscrowState RefundEmails(EscrowState s, RefundCause cause) =>
        AddEffect(AddEffect(s, EffectKind.SendEmail, EmailKind.RefundIssued, detail: cause.ToString()), EffectKind.SendEmail,
            EmailKind.MissedOpportunity, detail: cause.ToString());

    /// <summary>Why a refund that is being completed was made, read from what the escrow went through.</summary>
    public static RefundCause CauseOf(EscrowState s)
    {
        var byOperator = s.History.Any(h => h.Event == "operator_refund");
        if (s.ShareReversed)
        {
            return RefundCause.PlatformAfterRelease;
        }
        if (s.Reply is not null)
        {
            return RefundCause.PlatformAfterReply;
        }
        return byOperator && !s.History.Any(h => h.Event == "deadline_passed") ? RefundCause.PlatformBeforeReply : RefundCause.NoReply;
    }

    /// <summary>
    /// A refund of a paid-out escrow: the recipient's share is taken back first (a transfer reversal), and only once
    /// that is recorded is the charge refunded, so the platform never pays the share twice. A share already taken back
    /// (a dispute's reversal) is not reversed again; one under way is not started twice (its answer adds the refund).
    /// </summary>
    private static Decision RefundAfterRelease(EscrowState s, string reason, DateTimeOffset now)
    {
        var pending = Transition(s with { NeedsOperator = false }, EscrowStatus.RefundPending, now, "operator_refund", detail: reason);
        if (s.Outbox.Any(e => e.Kind == EffectKind.ReverseTransfer))
        {
            return Decision.Accept(pending);
        }
        return Decision.Accept(AddEffect(pending, s.ShareReversed ? EffectKind.RefundPayment : EffectKind.ReverseTransfer,
            keyAttempt: s.MoneyKeyAttemptFloor));
    }

    /// <summary>
    /// A dispute stops automatic actions. Opened after the recipient was paid, with Disputes:ReverseTransfer, it takes
    /// their share back: the recipient, not the platform, carries the chargeback until the dispute is decided.
    /// </summary>
    private Decision OnDisputeOpened(EscrowState s, DisputeOpened d, DateTimeOffset now)
    {
        var opened = Record(s with { DisputeOpen = true, DisputeId = d.DisputeId, DisputeStatus = DisputeStatus.Open }, now,
            "dispute_opened", detail: d.DisputeId);
        var reverse = s.Status == EscrowStatus.Released && Policy.ReverseTransferOnDispute && !s.ShareReversed && !s.Outbox.Any(e =>
            e.Kind == EffectKind.ReverseTransfer);
        opened = Alert(opened, AlertKind.DisputeOpened, reverse
            ? $"Dispute {d.DisputeId} was opened on the charge of escrow {s.Id} after the recipient was paid: their share is taken back "
                + $"(Disputes:ReverseTransfer) and transferred again if the dispute is won. Automatic actions are stopped until it closes."
            : $"Dispute {d.DisputeId} was opened on the charge of escrow {s.Id}: automatic actions are stopped until it closes or an "
                + $"operator resolves it.");
        return Decision.Accept(reverse ? AddEffect(opened, EffectKind.ReverseTransfer, keyAttempt: s.MoneyKeyAttemptFloor) : opened);
    }

    /// <summary>
    /// Won: the money stays with the platform, so a share taken back for the dispute is transferred again, under the
    /// next transfer key (unless an operator refunded the sender meanwhile). Lost: the sender's bank returned the money;
    /// it is recorded, nothing is transferred, and both parties are told.
    /// </summary>
    private static Decision OnDisputeClosed(EscrowState s, DisputeClosed d, DateTimeOffset now)
    {
        var closed = s with { DisputeOpen = false, DisputeStatus = d.Won ? DisputeStatus.Won : DisputeStatus.Lost };
        if (!d.Won)
        {
            closed = Record(closed, now, "dispute_lost", detail: d.DisputeId);
            closed = Alert(closed, AlertKind.DisputeLost,
                $"Dispute {d.DisputeId} of escrow {s.Id} was lost: the sender's bank returned {s.Amount.Minor} {s.Amount.Currency} to "
                    + $"the sender. "
                + (s.ShareReversed || s.Outbox.Any(e =>
                    e.Kind == EffectKind.ReverseTransfer) ? "The recipient's share was taken back." : "The platform carries the loss."));
            return Decision.Accept(s.Status == EscrowStatus.Released ? RefundEmails(closed, RefundCause.Dispute) : closed);
        }
        if (s.Status == EscrowStatus.Released && s.ShareReversed)
        {
            var again = Transition(closed with { TransferKeyAttempt = s.TransferKeyAttempt + 1, NeedsOperator = false },
                EscrowStatus.Processing, now, "dispute_won", detail: d.DisputeId);
            again = Alert(again, AlertKind.DisputeWon,
                $"Dispute {d.DisputeId} of escrow {s.Id} was won: the recipient's share is transferred again.");
            return StartTransfer(again, now);
        }
        // A reversal under way may have been made already (its answer lost): it finishes, and its answer transfers the
        // share again (OnTransferReversalMade). Refunded by an operator meanwhile: nothing to pay.
        var kept = Record(closed, now, "dispute_won", detail: d.DisputeId);
        var reversing = s.Status == EscrowStatus.Released && s.Outbox.Any(e => e.Kind == EffectKind.ReverseTransfer);
        return Decision.Accept(Alert(kept, AlertKind.DisputeWon, reversing
            ? $"Dispute {d.DisputeId} of escrow {s.Id} was won while the share was being taken back: it is transferred again once "
                + $"the reversal is recorded."
            : s.Status == EscrowStatus.Released
            ? $"Dispute {d.DisputeId} of escrow {s.Id} was won: the recipient keeps the share."
            : $"Dispute {d.DisputeId} of escrow {s.Id} was won; the escrow is {s.Status.ToWire()}, so nothing is transferred."));
    }

    /// <summary>
    /// An operator says the dispute no longer takes the money (withdrawn, or settled outside Stripe's decision): it
    /// ends as resolved, automatic actions resume, and a share taken back for it is transferred again, as after a won
    /// dispute (it used to stay taken back, with the dispute shown open).
    /// </summary>
    private static Decision ResolveDispute(EscrowState s, OperatorResolveDispute r, DateTimeOffset now)
    {
        var resolved = s with { DisputeOpen = false, DisputeStatus = DisputeStatus.Resolved };
        if (s.Status == EscrowStatus.Released && s.ShareReversed)
        {
            var again = Transition(resolved with { TransferKeyAttempt = s.TransferKeyAttempt + 1, NeedsOperator = false },
                EscrowStatus.Processing, now, "dispute_resolved", detail: r.Reason);
            return StartTransfer(again, now);
        }
        // A reversal under way is never dropped: it may have been made (its answer lost). Its answer transfers the share
        // again (OnTransferReversalMade); a refund's own reversal, in refund_pending, goes on to the refund.
        return Decision.Accept(Record(resolved, now, "dispute_resolved", detail: r.Reason));
    }

    private static Decision OnTransferReversalMade(EscrowState s, TransferReversalMade r, DateTimeOffset now)
    {
        var reversed = RemoveEffect(s, r.EffectId) with { ReversedTransferId = s.TransferId, TransferReversalId = r.ReversalId };
        var detail = $"{r.ReversalId} of {s.TransferId}";
        if (s.Status == EscrowStatus.Released && s.DisputeStatus is DisputeStatus.Won or DisputeStatus.Resolved)
        {
            // The dispute ended while its reversal was under way: the share goes back to the recipient, as after a won one.
            var again = Transition(reversed with { TransferKeyAttempt = s.TransferKeyAttempt + 1, NeedsOperator = false },
                EscrowStatus.Processing, now, "share_reversed", s.Split.RecipientShare.Minor, detail);
            return StartTransfer(again, now);
        }
        reversed = Record(reversed, now, "share_reversed", s.Split.RecipientShare.Minor, detail);
        return Decision.Accept(s.Status == EscrowStatus.RefundPending
            ? AddEffect(reversed, EffectKind.RefundPayment, keyAttempt: s.MoneyKeyAttemptFloor)
            : reversed);
    }

    private static Decision VoidedWhileHeld(EscrowState s, AuthorisationVoided v, DateTimeOffset now)
    {
        var voided = RemoveEffects(s, EffectKind.CapturePayment, EffectKind.RequestRefundPermit,
            EffectKind.CancelPaymentIntent) with { NextPermitRequestAt = null };
        voided = Transition(voided, EscrowStatus.Refunded, now, "authorisation_voided", s.Amount.Minor, v.Reason);
        // Both parties are told. After the deadline with no reply (a refund waiting for its permit) the refund's own
        // e-mails say what happened; before it, or after a reply whose capture had not run, the message is withdrawn.
        voided = s.Status == EscrowStatus.RefundPending
            ? RefundEmails(voided, RefundCause.AuthorisationExpired)
            : Email(Email(voided, EmailKind.PaymentVoided), EmailKind.PaymentWithdrawn);
        return Decision.Accept(Alert(voided, AlertKind.AuthorisationVoided, v.Reason));
    }
}
