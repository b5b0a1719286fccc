namespace Escrow.Grains.Domain;

/// <summary>
/// How long an escrow's outbox has had work waiting, which the stuck-escrow monitor counts from. The machine adds
/// effects without a clock; every state the grain stages passes through <see cref="Stamp"/>, which dates the new ones.
/// </summary>
public static class EffectAge
{
    /// <summary>Dates the effects that have no date yet (those the change being staged added) with <paramref name="now"/>.</summary>
    public static EscrowState Stamp(EscrowState s, DateTimeOffset now)
    {
        if (s.Outbox.All(e => e.AddedAt is not null))
        {
            return s;
        }
        return s with { Outbox = [.. s.Outbox.Select(e => e.AddedAt is null ? e with { AddedAt = now } : e)] };
    }

    /// <summary>While a dispute is open no money moves automatically (<see cref="Disputes"/>): such an effect waits for the dispute, it is not stuck.</summary>
    public static bool HeldByDispute(EscrowState s, PendingEffect e) => !Disputes.MayRun(s, e);

    /// <summary>Since when the oldest effect that may run has been waiting; null when there is none.</summary>
    public static DateTimeOffset? WaitingSince(EscrowState s) =>
        s.Outbox.Where(e => e.AddedAt is not null && !HeldByDispute(s, e)).Min(e => e.AddedAt);

    /// <summary>
    /// Orders the outbox's changes that leave the history as it is: the oldest pending effect's id, or the next id when
    /// the outbox is empty. Effect ids only grow, so neither adding nor completing an effect ever lowers it.
    /// </summary>
    public static int Seq(EscrowState s) => s.Outbox.IsEmpty ? s.NextEffectId : s.Outbox.Min(e => e.Id);

    /// <summary>The transfer failed as often as the retry policy allows: nothing tries it again until an operator does.</summary>
    public static bool TransferRetriesExhausted(EscrowState s) => s.Status == EscrowStatus.TransferFailed && s.NextTransferAttemptAt is null;
}
