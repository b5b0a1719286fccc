namespace Escrow.Grains.Domain;

/// <summary>Findings about an escrow that an operator must see: each one goes through the escrow's outbox.</summary>
public sealed partial class EscrowMachine
{
    /// <summary>How many reported findings may wait in the outbox to be raised (a quarter of it).</summary>
    public const int AlertsWaitingMax = EscrowState.OutboxEffectsMax / 4;

    /// <summary>
    /// The alert a refused command calls for, or null: a Stripe event that names another payment or pays the wrong amount,
    /// a transfer in the escrow's group that is not its payout, a reversal of a transfer the escrow does not expect. A
    /// repeated event (already done) is not alerted again.
    /// </summary>
    public static AlertRaised? AlertOnRefusal(EscrowState s, EscrowCommand c, Rejection r)
    {
        if (!s.Exists)
        {
            return null;
        }
        if ((r == Rejection.PaymentIntentMismatch || r == Rejection.AmountMismatch) && EventClaims.PaymentIntentOf(c) is { } claimed)
        {
            var amount = c is PaymentAuthorised a ? $" with {a.AmountMinor} {a.Currency}" : "";
            return new(AlertKind.PaymentMismatch,
                $"Stripe reported {c.Name} of {claimed}{amount}; the escrow expects {s.Amount.Minor} {s.Amount.Currency} on "
                    + $"{s.PaymentIntentId}. Nothing was changed.",
                claimed);
        }
        if (r == Rejection.TransferMismatch && c is TransferReported t)
        {
            return new(AlertKind.TransferMismatch,
                $"Stripe reported transfer {t.TransferId} in this escrow's group, not adopted: "
                    + $"{EventClaims.TransferMismatch(s, t.AmountMinor, t.Currency, t.DestinationAccountId, t.RecipientAccountId)}.",
                t.TransferId);
        }
        if (c is TransferReversed v && r != Rejection.AlreadyDone && r != Rejection.DuplicateEvent)
        {
            return new(AlertKind.TransferReversed,
                $"Transfer {v.TransferId} was reversed ({v.AmountMinor}) outside this service, on an escrow that is not released "
                    + $"({r.Code}).",
                v.TransferId);
        }
        return null;
    }

    /// <summary>
    /// A finding an operator must see, in any status. The same finding still waiting to be raised is not added twice, and
    /// the alerts waiting are bounded, so findings reported faster than alerts can be stored cannot fill the outbox.
    /// </summary>
    private static Decision RaiseAlert(EscrowState s, AlertRaised a)
    {
        var waiting = s.Outbox.Where(e => e.Kind == EffectKind.RaiseAlert).ToArray();
        if (a.Key is not null && waiting.Any(e => e.Alert == a.Kind && e.AlertKey == a.Key))
        {
            return Decision.Reject(s, Rejection.AlreadyDone);
        }
        if (waiting.Length >= AlertsWaitingMax)
        {
            return Decision.Reject(s, Rejection.AlertsWaiting);
        }
        return Decision.Accept(AddEffect(s, EffectKind.RaiseAlert, detail: a.Detail, alert: a.Kind, alertKey: a.Key));
    }

    private static AlertRaised ReplyRefusedAlert(EscrowState s, ReplyRefused r) => r.Reason switch
    {
        RefusedReplyReason.NotAuthenticated => new(AlertKind.ReplyNotAuthenticated,
            $"A reply to escrow {s.Id} from the recipient's address failed the receiving server's checks ({r.Why}); nothing was released. "
            + $"Verify it and release with POST /v1/admin/escrows/{s.Id}/release if it is genuine.", r.MessageId),
        _ => new(AlertKind.ReplyFromUnknownSender,
            $"A reply to escrow {s.Id} came from an address that is not the recipient's; nothing was released. "
            + $"Verify it and release with POST /v1/admin/escrows/{s.Id}/release if it is genuine.", r.MessageId),
    };
}
