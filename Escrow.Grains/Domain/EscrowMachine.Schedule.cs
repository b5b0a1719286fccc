namespace Escrow.Grains.Domain;

// What is due when: the commands a wake-up decides, and the next time anything is due.
public sealed partial class EscrowMachine
{
    /// <summary>The timed commands whose moment has come. The grain feeds them to <see cref="Decide"/> in order.</summary>
    public static IReadOnlyList<EscrowCommand> DueCommands(EscrowState s, DateTimeOffset now)
    {
        if (!s.Exists || s.DisputeOpen)
        {
            return [];
        }
        switch (s.Status)
        {
            case EscrowStatus.AwaitingPayment when now >= s.UnpaidExpiresAt:
                return [new UnpaidExpired()];
            case EscrowStatus.Held when now >= s.ReplyDeadline:
                return [new DeadlinePassed()];
            case EscrowStatus.Held when !s.Reminder75Sent && now >= s.Reminder75At:
                return [new DeadlineReminderDue(EmailKind.DeadlineReminder75)];
            case EscrowStatus.Held when !s.Reminder50Sent && now >= s.Reminder50At:
                return [new DeadlineReminderDue(EmailKind.DeadlineReminder50)];
            case EscrowStatus.TransferFailed when s.NextTransferAttemptAt is { } due && now >= due:
                return [new TransferRetryDue()];
            case EscrowStatus.RefundPending when s.NextPermitRequestAt is { } due && now >= due:
                return [new RefundPermitRetryDue()];
            case EscrowStatus.PendingUserSetup when s.PayoutCheckAt is { } due && now >= due:
                return [new PayoutCheckDue()];
            default:
                return [];
        }
    }

    /// <summary>When the grain must next look at this escrow, or null when nothing is scheduled.</summary>
    public static DateTimeOffset? NextDueAt(EscrowState s)
    {
        if (!s.Exists)
        {
            return null;
        }
        DateTimeOffset? next = null;
        void Consider(DateTimeOffset? at)
        {
            if (at is { } value && (next is null || value < next))
            {
                next = value;
            }
        }
        foreach (var effect in s.Outbox)
        {
            Consider(effect.NotBefore ?? s.StatusChangedAt);
        }
        if (!s.DisputeOpen)
        {
            switch (s.Status)
            {
                case EscrowStatus.AwaitingPayment:
                    Consider(s.UnpaidExpiresAt);
                    break;
                case EscrowStatus.Held:
                    Consider(s.ReplyDeadline);
                    Consider(s.Reminder50Sent ? null : s.Reminder50At);
                    Consider(s.Reminder75Sent ? null : s.Reminder75At);
                    break;
                case EscrowStatus.TransferFailed:
                    Consider(s.NextTransferAttemptAt);
                    break;
                case EscrowStatus.RefundPending:
                    Consider(s.NextPermitRequestAt);
                    break;
                case EscrowStatus.PendingUserSetup:
                    Consider(s.PayoutCheckAt);
                    break;
            }
        }
        return next;
    }

    /// <summary>
    /// Whether a refund waits for a reply received at <paramref name="receivedAt"/> and recorded but not judged yet: one
    /// received by the reply deadline, while the sender of the reply may still retry its delivery.
    /// </summary>
    public bool AwaitsReply(EscrowState s, DateTimeOffset receivedAt, DateTimeOffset now) =>
        s.ReplyTimingOf(receivedAt) != ReplyTiming.TooLate && now <= s.ReplyDeadline + Policy.PendingReplyWaitMax;

    /// <summary>The permit is asked for again later; the history says once why the refund waits.</summary>
    private Decision AwaitReply(EscrowState s, ReplyAwaited a, DateTimeOffset now)
    {
        var waiting = RemoveEffect(s, a.EffectId) with { NextPermitRequestAt = now + Policy.PermitRetryDelay };
        return Decision.Accept(s.History[^1].Event == "refund_waits_for_reply"
            ? waiting
            : Record(waiting, now, "refund_waits_for_reply",
                detail: a.ReceivedAt.ToString("O", System.Globalization.CultureInfo.InvariantCulture)));
    }

    /// <summary>Whether a refund's money movement (cancel or refund) is already in the outbox or done.</summary>
    public static bool RefundStarted(EscrowState s) =>
        s.Outbox.Any(e => e.Kind.MovesMoneyBack()) || s.Status == EscrowStatus.Refunded;
}
