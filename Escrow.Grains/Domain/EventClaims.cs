namespace Escrow.Grains.Domain;

/// <summary>
/// What a Stripe event or a transfer found in the escrow's transfer group must claim before the escrow believes it: a
/// signed event proves only that Stripe sent it, not that its object is this escrow's (metadata can name any escrow).
/// </summary>
public static class EventClaims
{
    /// <summary>The PaymentIntent a payment command names, or null when it names none.</summary>
    public static string? PaymentIntentOf(EscrowCommand c) => c switch
    {
        PaymentAuthorised a => a.PaymentIntentId,
        PaymentFailed f => f.PaymentIntentId,
        AuthorisationVoided v => v.PaymentIntentId,
        _ => null,
    };

    /// <summary>True when the command names a PaymentIntent other than the escrow's own (an escrow without one yet accepts any).</summary>
    public static bool NamesAnotherPaymentIntent(EscrowState s, EscrowCommand c) =>
        PaymentIntentOf(c) is { Length: > 0 } claimed && s.PaymentIntentId is { } own && claimed != own;

    /// <summary>
    /// Why a transfer is not this escrow's payout, or null when it is: it must pay the escrow's share, in the escrow's
    /// currency, to the recipient's own Stripe account.
    /// </summary>
    public static string? TransferMismatch(EscrowState s, long amountMinor, string? currency, string? destinationAccountId, string? recipientAccountId)
    {
        var share = s.Split.RecipientShare;
        if (recipientAccountId is null || destinationAccountId != recipientAccountId)
        {
            return $"it goes to {destinationAccountId}, not to the recipient's account {recipientAccountId ?? "(none)"}";
        }
        if (amountMinor != share.Minor || !string.Equals(currency, share.Currency.Code, StringComparison.OrdinalIgnoreCase))
        {
            return $"it pays {amountMinor} {currency}, not the share of {share.Minor} {share.Currency.Code}";
        }
        return null;
    }
}
