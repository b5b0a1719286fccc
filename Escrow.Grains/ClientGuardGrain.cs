using System.Collections.Immutable;
using Escrow.Grains.Domain;
using Microsoft.Extensions.Options;

namespace Escrow.Grains;

[GenerateSerializer, Alias("escrow.client-guard-state.v1")]
public sealed record ClientGuardState
{
    [Id(0)] public ImmutableArray<UnpaidHold> Unpaid { get; init; } = [];
}

/// <summary>An unpaid escrow counted against a cap until it is paid, ends, or its unpaid expiry passes.</summary>
[GenerateSerializer, Immutable, Alias("escrow.unpaid-hold.v1")]
public sealed record UnpaidHold([property: Id(0)] Guid EscrowId, [property: Id(1)] DateTimeOffset ExpiresAt);

/// <summary>One client's open unpaid escrows (the rules are <see cref="Admission"/>'s).</summary>
[GrainType("client-guard")]
public sealed class ClientGuardGrain(
    [PersistentState("client-guard", EscrowStorage.ProviderName)] IPersistentState<ClientGuardState> state,
    TimeProvider clock,
    IOptions<EscrowOptions> options) : Grain, IClientGuardGrain
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
            return new GuardAnswer(false, false, refused.Code, refused.Message);
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
}
