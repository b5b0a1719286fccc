namespace Escrow.Grains.Domain;

/// <summary>
/// Who may open another unpaid escrow. A recipient's daily slot is taken only when a payment is authorised, so unpaid
/// creates cannot use up the day; instead the unpaid escrows themselves are capped, per recipient and per sender, and
/// each cap frees itself when its escrows are paid or expire.
/// </summary>
public static class Admission
{
    /// <summary>The recipient's rule: today's paid slots below the daily limit (checked before any PaymentIntent exists), and unpaid escrows below their cap.</summary>
    public static Rejection? Recipient(int slotsTakenToday, int dailyLimit, int unpaidNow, int unpaidMax) =>
        slotsTakenToday >= dailyLimit ? Rejection.DailyLimitReached
        : unpaidNow >= unpaidMax ? Rejection.TooManyUnpaid
        : null;

    /// <summary>The sender's rule: unpaid escrows from one e-mail address below their cap.</summary>
    public static Rejection? Sender(int unpaidNow, int unpaidMax) => unpaidNow >= unpaidMax ? Rejection.TooManyUnpaid : null;

    /// <summary>An unpaid hold counts until its escrow's unpaid expiry; one whose release was lost drops out by itself then.</summary>
    public static bool StillUnpaid(DateTimeOffset expiresAt, DateTimeOffset now) => now < expiresAt;
}
