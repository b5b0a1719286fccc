namespace Escrow;

[Alias("escrow.IRecipientGrain")]
public interface IRecipientGrain : IGrainWithStringKey
{
    /// <summary>Creates or updates the recipient; with the profile's KeyId the change carries its audit row in the same write.</summary>
    [Alias("upsert")] Task<RecipientView> UpsertAsync(RecipientProfile profile);

    [Alias("get")] Task<RecipientView?> GetAsync();

    /// <summary>
    /// Prices the window and, if today's paid slots are below the daily limit and the recipient's unpaid escrows below
    /// their cap, counts this escrow as unpaid. Idempotent per escrow.
    /// </summary>
    [Alias("reserve")] Task<Reservation> ReserveAsync(Guid escrowId, TimeSpan responseWindow);

    /// <summary>The escrow's payment is authorised: it takes one of today's slots and no longer counts as unpaid. Idempotent.</summary>
    [Alias("take-slot")] Task TakeSlotAsync(Guid escrowId, long amountMinor, int revenueShareBps, string currency);

    [Alias("release-slot")] Task ReleaseSlotAsync(Guid escrowId);

    [Alias("onboarding-link")] Task<OnboardingLink> CreateOnboardingLinkAsync(string refreshUrl, string returnUrl);

    /// <summary>The same, asked for by <paramref name="keyId"/> (an API key's id, or who else asked): the call is audited.</summary>
    [Alias("onboarding-link-audited")] Task<OnboardingLink> CreateOnboardingLinkAsync(string refreshUrl, string returnUrl, string keyId);

    /// <summary>The connected account to pay, or null when the recipient cannot receive transfers yet.</summary>
    [Alias("payout-destination")] Task<string?> GetPayoutDestinationAsync();

    /// <summary>
    /// Remembers an escrow that waits for this recipient's payout setup; it is released when payouts are enabled.
    /// Returns true when payouts are enabled already (the escrow transfers at once instead of waiting).
    /// </summary>
    [Alias("await-payout-setup")] Task<bool> AwaitPayoutSetupAsync(Guid escrowId);

    /// <summary>Stripe says the account changed (account.updated), or a poll read it.</summary>
    [Alias("account-updated")] Task AccountUpdatedAsync(string accountId, bool payoutsEnabled);

    /// <summary>Reads the account from Stripe (the webhook can be missed) and applies it.</summary>
    [Alias("refresh-account")] Task<RecipientView?> RefreshAccountAsync();

    /// <summary>
    /// Deletes the recipient: no new escrows, and the address and name become "erased". False when there is none. The
    /// caller checks first that none of its escrows is open.
    /// </summary>
    [Alias("delete")] Task<bool> DeleteAsync();
}

[GenerateSerializer, Immutable, Alias("escrow.recipient-profile.v1")]
public sealed record RecipientProfile(
    [property: Id(0)] string Email,
    [property: Id(1)] string DisplayName,
    [property: Id(2)] long BasePriceMinor,
    [property: Id(3)] string Currency,
    [property: Id(4)] int? RevenueShareBps,
    [property: Id(5)] int? DailyLimit,
    [property: Id(6)] string? Country = null,
    [property: Id(7)] string? KeyId = null);

[GenerateSerializer, Immutable, Alias("escrow.recipient-view.v1")]
public sealed record RecipientView(
    [property: Id(0)] string Id,
    [property: Id(1)] string Email,
    [property: Id(2)] string DisplayName,
    [property: Id(3)] long BasePriceMinor,
    [property: Id(4)] string Currency,
    [property: Id(5)] int RevenueShareBps,
    [property: Id(6)] int DailyLimit,
    [property: Id(7)] string? StripeAccountId,
    [property: Id(8)] bool PayoutsEnabled,
    [property: Id(9)] int EscrowsAwaitingPayoutSetup,
    [property: Id(10)] string? Country = null);

/// <param name="New">The slot was taken by this call, not one the escrow already held.</param>
[GenerateSerializer, Immutable, Alias("escrow.reservation.v1")]
public sealed record Reservation(
    [property: Id(0)] bool Reserved,
    [property: Id(7)] Rejection? Rejection,
    [property: Id(3)] long AmountMinor,
    [property: Id(4)] string Currency,
    [property: Id(5)] int RevenueShareBps,
    [property: Id(6)] bool New = false)
{
    /// <summary>The rejection's wire name, for logs and test messages; compare <see cref="Rejection"/> itself.</summary>
    public string? RejectionCode => Rejection?.Code;
}

[GenerateSerializer, Immutable, Alias("escrow.onboarding-link.v1")]
public sealed record OnboardingLink([property: Id(0)] string AccountId, [property: Id(1)] string Url);
