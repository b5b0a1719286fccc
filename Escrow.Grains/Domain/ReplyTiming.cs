namespace Escrow.Grains.Domain;

/// <summary>
/// The reply-grace rule: a reply received by the deadline is on time; one received after it but by the reply deadline
/// (the deadline plus the grace period) is accepted in the grace period; a later one is too late. A reply is judged by
/// when it was received, not when it is handled.
/// </summary>
public enum ReplyTiming
{
    OnTime = 0,
    InGrace = 1,
    TooLate = 2,
}

public static class ReplyTimings
{
    public static ReplyTiming Of(DateTimeOffset receivedAt, DateTimeOffset deadline, DateTimeOffset replyDeadline) =>
        receivedAt <= deadline ? ReplyTiming.OnTime
        : receivedAt <= replyDeadline ? ReplyTiming.InGrace
        : ReplyTiming.TooLate;

    /// <summary>The timing of a reply to this escrow received at <paramref name="receivedAt"/>.</summary>
    public static ReplyTiming ReplyTimingOf(this EscrowState s, DateTimeOffset receivedAt) => Of(receivedAt, s.Deadline, s.ReplyDeadline);
}
