namespace Escrow.Grains;

[GenerateSerializer, Alias("escrow.client-guard-state.v1")]
public sealed record ClientGuardState
{
    [Id(0)] public ImmutableArray<UnpaidHold> Unpaid { get; init; } = [];

    /// <summary>When the client's cards were declined (the last hour's, bounded by <see cref="CardTesting.DeclinesKeptMax"/>).</summary>
    [Id(1)] public ImmutableArray<Decline> Declines { get; init; } = [];
}

/// <summary>An unpaid escrow counted against a cap until it is paid, ends, or its unpaid expiry passes.</summary>
[GenerateSerializer, Immutable, Alias("escrow.unpaid-hold.v1")]
public sealed record UnpaidHold([property: Id(0)] Guid EscrowId, [property: Id(1)] DateTimeOffset ExpiresAt);

/// <summary>One client's open unpaid escrows and declined cards (the rules are <see cref="Admission"/>'s and <see cref="CardTesting"/>'s).</summary>
[GrainType("client-guard")]
public sealed partial class ClientGuardGrain(
    [PersistentState("client-guard", EscrowStorage.ProviderName)] IPersistentState<ClientGuardState> state,
    TimeProvider clock,
    IOptions<EscrowOptions> options,
    IOptions<CardTestingOptions> cardTesting,
    IEscrowStore store,
    ILogger<ClientGuardGrain> logger) : Grain, IClientGuardGrain
{
    public async Task<GuardAnswer> HoldUnpaidAsync(Guid escrowId, DateTimeOffset expiresAt)
    {
        if (state.State.Unpaid.Any(h => h.EscrowId == escrowId))
        {
            return new GuardAnswer(true, false);
        }
        var now = clock.GetUtcNow();
        var open = state.State.Unpaid.RemoveAll(h => !Admission.StillUnpaid(h.ExpiresAt, now));
        if (Admission.Sender(open.Length, options.Value.UnpaidPerSenderMax) is { } refused)
        {
            return new GuardAnswer(false, false, refused);
        }
        await state.WriteOrForgetAsync(state.State with { Unpaid = open.Add(new UnpaidHold(escrowId, expiresAt)) }, this);
        return new GuardAnswer(true, true);
    }

    public async Task ReleaseUnpaidAsync(Guid escrowId)
    {
        if (state.State.Unpaid.Any(h => h.EscrowId == escrowId))
        {
            await state.WriteOrForgetAsync(state.State with { Unpaid = state.State.Unpaid.RemoveAll(h => h.EscrowId == escrowId) }, this);
        }
    }

    public Task<GuardAnswer> CheckDeclinesAsync()
    {
        var recent = CardTesting.Recent(state.State.Declines, clock.GetUtcNow());
        return Task.FromResult(CardTesting.BlockedUntil(recent, cardTesting.Value.DeclinesPerClientMax) is { } until
            ? new GuardAnswer(false, false, Rejection.TooManyDeclines, until)
            : new GuardAnswer(true, false));
    }

    public async Task<int> RecordDeclineAsync(string declineId)
    {
        var now = clock.GetUtcNow();
        if (state.State.Declines.Any(d => d.Id == declineId))
        {
            return CardTesting.InAlertWindow(CardTesting.Recent(state.State.Declines, now), now);
        }
        var recent = CardTesting.Recent(state.State.Declines.Add(new Decline(now, declineId)), now);
        await state.WriteOrForgetAsync(state.State with { Declines = recent }, this);
        var inWindow = CardTesting.InAlertWindow(recent, now);
        if (this.GetPrimaryKeyString() == ClientGuardKeys.Everyone && CardTesting.Suspected(inWindow, cardTesting.Value.DeclinesPerWindowAlert))
        {
            // One alert per window: the dedupe key names the window the decline fell in.
            var window = now.ToUnixTimeSeconds() / (long)CardTesting.AlertWindow.TotalSeconds;
            LogSuspected(inWindow);
            await store.RaiseAlertAsync(new NewAlert(AlertKind.CardTestingSuspected, null, $"card_testing_suspected/{window}",
                $"{inWindow} cards were declined at the create in the last {CardTesting.AlertWindow.TotalMinutes:0} minutes (alert above {cardTesting.Value.DeclinesPerWindowAlert}): someone may be testing stolen cards. Clients with {cardTesting.Value.DeclinesPerClientMax} declines in an hour are refused for an hour.", now));
        }
        return inWindow;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Card testing suspected: {Declines} declines in the alert window")]
    private partial void LogSuspected(int declines);
}
