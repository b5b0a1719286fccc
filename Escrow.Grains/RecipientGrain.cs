using Escrow.Grains.Payments;

namespace Escrow.Grains;

[GenerateSerializer, Alias("escrow.recipient-state.v1")]
public sealed record RecipientState
{
    public const int WaitingEscrowsMax = 10_000;
    /// <summary>The bound of the unpaid list (the configured cap is at most this).</summary>
    public const int UnpaidMax = 1_000;

    [Id(0)] public bool Exists { get; init; }
    [Id(1)] public string Email { get; init; } = "";
    [Id(2)] public string DisplayName { get; init; } = "";
    [Id(3)] public long BasePriceMinor { get; init; }
    [Id(4)] public string Currency { get; init; } = "EUR";
    [Id(5)] public int RevenueShareBps { get; init; }
    [Id(6)] public int DailyLimit { get; init; }
    [Id(7)] public string? StripeAccountId { get; init; }
    [Id(8)] public bool PayoutsEnabled { get; init; }
    [Id(9)] public ImmutableArray<SlotReservation> Reservations { get; init; } = [];
    [Id(10)] public ImmutableArray<Guid> AwaitingPayoutSetup { get; init; } = [];

    /// <summary>ISO 3166 alpha-2 country of the Express account; null means Stripe:ConnectCountry.</summary>
    [Id(11)] public string? Country { get; init; }

    /// <summary>The last UTC day a payout-setup reminder was sent (or given up) for.</summary>
    [Id(12)] public DateOnly? PayoutReminderDoneOn { get; init; }

    /// <summary>The reminder decided and stored before it is sent; cleared once it is known to be sent.</summary>
    [Id(13)] public PayoutReminderIntent? PayoutReminderPending { get; init; }

    /// <summary>Escrows created and not paid yet, with the price fixed for them; a slot is taken only when one is paid.</summary>
    [Id(14)] public ImmutableArray<UnpaidSlotHold> Unpaid { get; init; } = [];

    /// <summary>Audit rows of changes written with them, waiting to reach the audit log (removed once they are there).</summary>
    [Id(15)] public ImmutableArray<PendingAuditRow> PendingAudits { get; init; } = [];

    [Id(16)] public long NextAuditSeq { get; init; }

    /// <summary>When the recipient was deleted (DELETE /v1/recipients/{id}); its address and name are erased.</summary>
    [Id(17)] public DateTimeOffset? DeletedAt { get; init; }
}

/// <summary>A payout-setup reminder about to be sent: its day names it (one per recipient and UTC day).</summary>
[GenerateSerializer, Immutable, Alias("escrow.payout-reminder-intent.v1")]
public sealed record PayoutReminderIntent([property: Id(0)] DateOnly Day, [property: Id(1)] ImmutableArray<Guid> Escrows);

/// <summary>An audit row kept in the state of the change it records until the audit log has it.</summary>
[GenerateSerializer, Immutable, Alias("escrow.pending-audit-row.v1")]
public sealed record PendingAuditRow(
    [property: Id(0)] long Seq, [property: Id(1)] string KeyId, [property: Id(2)] string Action, [property: Id(3)] DateTimeOffset At, [property: Id(4)] string? Details);

/// <summary>An unpaid escrow of this recipient: counted against the unpaid cap until it is paid, ends, or expires.</summary>
[GenerateSerializer, Immutable, Alias("escrow.unpaid-slot-hold.v1")]
public sealed record UnpaidSlotHold([property: Id(0)] Guid EscrowId, [property: Id(1)] DateTimeOffset ExpiresAt, [property: Id(2)] long AmountMinor, [property: Id(3)] int RevenueShareBps, [property: Id(4)] string Currency);

/// <summary>One of the recipient's daily message slots, held by an escrow; the price is fixed with it.</summary>
[GenerateSerializer, Immutable, Alias("escrow.slot.v1")]
public sealed record SlotReservation([property: Id(0)] Guid EscrowId, [property: Id(1)] DateOnly Day, [property: Id(2)] long AmountMinor, [property: Id(3)] int RevenueShareBps, [property: Id(4)] string Currency);

/// <summary>A recipient: contact, pricing, revenue share, daily limit and Stripe Connect account.</summary>
[GrainType("recipient")]
public sealed partial class RecipientGrain(
    [PersistentState("recipient", EscrowStorage.ProviderName)] IPersistentState<RecipientState> state,
    TimeProvider clock,
    IPaymentGateway payments,
    IOptions<EscrowOptions> options,
    PayoutReminderMail reminderMail,
    IEscrowStore store,
    ILogger<RecipientGrain> logger) : Grain, IRecipientGrain, IRemindable
{
    private const string PayoutPollReminder = "payout-setup-poll";
    private const string AuditReminder = "audit-flush";
    private const int PendingAuditsMax = 1_000;

    private bool _pollReminderKnown;

    private string Id => this.GetPrimaryKeyString();

    /// <summary>
    /// While escrows wait for this recipient's payout setup, the account is read once a period (a day by default):
    /// account.updated can be missed, and the escrows must not wait for a webhook that never comes.
    /// </summary>
    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName == AuditReminder)
        {
            await FlushAuditsAsync();
            return;
        }
        if (state.State.AwaitingPayoutSetup.IsEmpty)
        {
            if (await this.GetReminder(PayoutPollReminder) is { } reminder)
            {
                await this.UnregisterReminder(reminder);
            }
            _pollReminderKnown = false;
            return;
        }
        try
        {
            await RefreshAccountAsync();
        }
        catch (Exception e) when (e is Payments.PaymentGatewayException || TransientFailure.Is(e))
        {
            LogPollFailed(e, Id);
        }
        // Still not set up: one e-mail a day lists every waiting escrow with the onboarding link.
        if (!state.State.PayoutsEnabled && !state.State.AwaitingPayoutSetup.IsEmpty)
        {
            await RemindPayoutSetupAsync();
        }
    }

    public async Task<RecipientView> UpsertAsync(RecipientProfile p)
    {
        var o = options.Value;
        await WriteAuditedAsync(p.KeyId, AuditActions.RecipientUpsert, state.State with
        {
            Exists = true,
            Email = p.Email,
            DisplayName = p.DisplayName,
            BasePriceMinor = p.BasePriceMinor,
            Currency = Escrow.Currency.Parse(p.Currency).Code,
            RevenueShareBps = p.RevenueShareBps ?? (state.State.Exists ? state.State.RevenueShareBps : o.DefaultRevenueShareBps),
            DailyLimit = p.DailyLimit ?? (state.State.Exists ? state.State.DailyLimit : o.DefaultDailyLimit),
            // Stripe cannot move an account to another country: once the account exists, its country stays.
            Country = state.State.StripeAccountId is null ? p.Country ?? state.State.Country : state.State.Country,
        }, s => $"{(state.State.Exists ? "updated" : "created")}: price {s.BasePriceMinor} {s.Currency}, share {s.RevenueShareBps} bps, daily limit {s.DailyLimit}");
        return View()!;
    }

    public Task<RecipientView?> GetAsync() => Task.FromResult(View());

    public async Task<bool> DeleteAsync()
    {
        if (!state.State.Exists)
        {
            return false;
        }
        await WriteAsync(state.State with
        {
            Exists = false,
            Email = Storage.PersonalData.Erased,
            DisplayName = Storage.PersonalData.Erased,
            Reservations = [],
            AwaitingPayoutSetup = [],
            PayoutReminderPending = null,
            DeletedAt = clock.GetUtcNow(),
        });
        return true;
    }

    public async Task<Reservation> ReserveAsync(Guid escrowId, TimeSpan responseWindow)
    {
        var s = state.State;
        if (!s.Exists)
        {
            return Refuse(Rejection.UnknownRecipient);
        }
        if (s.Reservations.FirstOrDefault(r => r.EscrowId == escrowId) is { } held)
        {
            return new Reservation(true, null, held.AmountMinor, held.Currency, held.RevenueShareBps);
        }
        if (s.Unpaid.FirstOrDefault(h => h.EscrowId == escrowId) is { } waiting)
        {
            return new Reservation(true, null, waiting.AmountMinor, waiting.Currency, waiting.RevenueShareBps);
        }
        if (!options.Value.IsEnabled(s.Currency))
        {
            // Priced before Escrow:Currencies stopped listing its currency: the breaker has no cap for it.
            return Refuse(Rejection.CurrencyNotEnabled);
        }
        var window = options.Value.EffectiveWindows.FirstOrDefault(w => w.Duration == responseWindow);
        if (window is null)
        {
            return Refuse(Rejection.UnsupportedWindow);
        }
        var amount = (long)Math.Round(s.BasePriceMinor * window.PriceMultiplier, MidpointRounding.AwayFromZero);
        if (amount <= 0)
        {
            return Refuse(Rejection.RecipientHasNoPrice);
        }
        var now = clock.GetUtcNow();
        var today = DateOnly.FromDateTime(now.UtcDateTime);
        var unpaid = s.Unpaid.RemoveAll(h => !Admission.StillUnpaid(h.ExpiresAt, now));
        if (Admission.Recipient(s.Reservations.Count(r => r.Day == today), s.DailyLimit, unpaid.Length, options.Value.UnpaidPerRecipientMax) is { } refused)
        {
            return Refuse(refused);
        }
        // No slot yet: the escrow counts as unpaid until its payment is authorised (TakeSlotAsync) or it ends.
        var hold = new UnpaidSlotHold(escrowId, now + options.Value.UnpaidExpiry, amount, s.RevenueShareBps, s.Currency);
        await WriteAsync(s with { Unpaid = unpaid.Add(hold) });
        return new Reservation(true, null, amount, s.Currency, s.RevenueShareBps, New: true);
    }

    public async Task TakeSlotAsync(Guid escrowId, long amountMinor, int revenueShareBps, string currency)
    {
        var s = state.State;
        if (s.Reservations.Any(r => r.EscrowId == escrowId))
        {
            return;
        }
        // Paid: the slot is taken even when the day filled up meanwhile (the limit was checked at the create, and
        // the unpaid cap bounds how many can pass that check together). Only today's slots count; older ones go.
        var today = DateOnly.FromDateTime(clock.GetUtcNow().UtcDateTime);
        var slot = new SlotReservation(escrowId, today, amountMinor, revenueShareBps, currency);
        await WriteAsync(s with
        {
            Reservations = s.Reservations.RemoveAll(r => r.Day < today).Add(slot),
            Unpaid = s.Unpaid.RemoveAll(h => h.EscrowId == escrowId),
        });
    }

    public async Task ReleaseSlotAsync(Guid escrowId)
    {
        if (state.State.Reservations.Any(r => r.EscrowId == escrowId) || state.State.Unpaid.Any(h => h.EscrowId == escrowId))
        {
            await WriteAsync(state.State with
            {
                Reservations = state.State.Reservations.RemoveAll(r => r.EscrowId == escrowId),
                Unpaid = state.State.Unpaid.RemoveAll(h => h.EscrowId == escrowId),
            });
        }
    }

    public Task<OnboardingLink> CreateOnboardingLinkAsync(string refreshUrl, string returnUrl) => CreateOnboardingLinkCoreAsync(refreshUrl, returnUrl, null);

    public Task<OnboardingLink> CreateOnboardingLinkAsync(string refreshUrl, string returnUrl, string keyId) => CreateOnboardingLinkCoreAsync(refreshUrl, returnUrl, keyId);

    private async Task<OnboardingLink> CreateOnboardingLinkCoreAsync(string refreshUrl, string returnUrl, string? keyId)
    {
        if (!state.State.Exists)
        {
            throw new InvalidOperationException($"Recipient {Id} does not exist.");
        }
        if (state.State.StripeAccountId is null)
        {
            var accountId = await payments.CreateConnectedAccountAsync(Id, state.State.Email, state.State.Country);
            await WriteAuditedAsync(keyId, AuditActions.OnboardingLink, state.State with { StripeAccountId = accountId }, s => $"Stripe account {s.StripeAccountId} created");
        }
        else
        {
            await WriteAuditedAsync(keyId, AuditActions.OnboardingLink, state.State, s => $"link for Stripe account {s.StripeAccountId}");
        }
        var url = await payments.CreateOnboardingLinkAsync(state.State.StripeAccountId!, refreshUrl, returnUrl);
        return new OnboardingLink(state.State.StripeAccountId!, url);
    }

    public async Task<string?> GetPayoutDestinationAsync()
    {
        if (state.State is { PayoutsEnabled: false, StripeAccountId: not null })
        {
            // account.updated can be missed: read the account before telling an escrow to wait.
            await RefreshAccountAsync();
        }
        return state.State.PayoutsEnabled ? state.State.StripeAccountId : null;
    }

    public async Task<bool> AwaitPayoutSetupAsync(Guid escrowId)
    {
        if (state.State.PayoutsEnabled)
        {
            // Enabled between the escrow's check and this call. The escrow is waiting on us, so calling it back
            // would deadlock: the answer tells it instead.
            return true;
        }
        // The poll that reads the account for the waiting escrows is registered before the list is written, so a
        // listed escrow always has one (an unneeded poll unregisters itself).
        await EnsurePollReminderAsync();
        if (state.State.AwaitingPayoutSetup.Contains(escrowId))
        {
            return false;
        }
        if (state.State.AwaitingPayoutSetup.Length >= RecipientState.WaitingEscrowsMax)
        {
            throw new InvalidOperationException($"Recipient {Id} has {RecipientState.WaitingEscrowsMax} escrows waiting for payout setup.");
        }
        await WriteAsync(state.State with { AwaitingPayoutSetup = state.State.AwaitingPayoutSetup.Add(escrowId) });
        return false;
    }

    public async Task AccountUpdatedAsync(string accountId, bool payoutsEnabled)
    {
        if (state.State.StripeAccountId != accountId)
        {
            LogForeignAccount(Id, accountId);
            return;
        }
        if (state.State.PayoutsEnabled != payoutsEnabled)
        {
            await WriteAsync(state.State with { PayoutsEnabled = payoutsEnabled });
        }
        if (!payoutsEnabled || state.State.AwaitingPayoutSetup.IsEmpty)
        {
            return;
        }
        // One-way: an escrow may be calling us right now, so we never wait on it. A message lost with a silo only
        // delays that escrow until its own periodic payout check asks us again.
        foreach (var escrowId in state.State.AwaitingPayoutSetup)
        {
            await GrainFactory.GetGrain<IEscrowGrain>(escrowId).RecipientPayoutsEnabledAsync();
        }
        await WriteAsync(state.State with { AwaitingPayoutSetup = [] });
    }

    public async Task<RecipientView?> RefreshAccountAsync()
    {
        if (state.State.StripeAccountId is { } accountId)
        {
            var account = await payments.GetConnectedAccountAsync(accountId);
            await AccountUpdatedAsync(accountId, account.CanReceiveTransfers);
        }
        return View();
    }

    private Task WriteAsync(RecipientState next) => state.WriteOrForgetAsync(next, this);

    /// <summary>
    /// Writes the change with its audit row in the same state write, then copies the row to the audit log. The reminder
    /// that retries the copy is registered first, so a crash or a database outage after the write still gets the row
    /// there (named by its sequence number: a second copy adds nothing).
    /// </summary>
    private async Task WriteAuditedAsync(string? keyId, string action, RecipientState next, Func<RecipientState, string> details)
    {
        if (keyId is null)
        {
            await WriteAsync(next);
            return;
        }
        if (next.PendingAudits.Length >= PendingAuditsMax)
        {
            throw new InvalidOperationException($"Recipient {Id} has {PendingAuditsMax} audit rows the audit log has not taken; is the database reachable?");
        }
        await this.RegisterOrUpdateReminder(AuditReminder, options.Value.ReminderPeriod, options.Value.ReminderPeriod);
        var row = new PendingAuditRow(next.NextAuditSeq, keyId, action, clock.GetUtcNow(), details(next));
        await WriteAsync(next with { PendingAudits = next.PendingAudits.Add(row), NextAuditSeq = next.NextAuditSeq + 1 });
        await FlushAuditsAsync();
    }

    private async Task FlushAuditsAsync()
    {
        try
        {
            var rows = state.State.PendingAudits;
            foreach (var row in rows)
            {
                await store.WriteAuditAsync(new AuditEntry(0, row.KeyId, row.Action, null, null, row.At, row.Details, Id, $"recipient/{Id}/{row.Seq}"));
            }
            if (!rows.IsEmpty)
            {
                await WriteAsync(state.State with { PendingAudits = state.State.PendingAudits.RemoveRange(rows) });
            }
            if (await this.GetReminder(AuditReminder) is { } reminder)
            {
                await this.UnregisterReminder(reminder);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The change is durable and so is its row, in the state; the reminder copies it later.
            LogAuditDeferred(e, Id);
        }
    }

    private async Task EnsurePollReminderAsync()
    {
        if (_pollReminderKnown)
        {
            return;
        }
        var period = options.Value.PayoutSetupPollPeriod;
        await this.RegisterOrUpdateReminder(PayoutPollReminder, period, period);
        _pollReminderKnown = true;
    }

    private RecipientView? View()
    {
        var s = state.State;
        return s.Exists
            ? new RecipientView(Id, s.Email, s.DisplayName, s.BasePriceMinor, s.Currency, s.RevenueShareBps, s.DailyLimit, s.StripeAccountId, s.PayoutsEnabled, s.AwaitingPayoutSetup.Length, s.Country)
            : null;
    }

    private static Reservation Refuse(Rejection r) => new(false, r, 0, "", 0);
}
