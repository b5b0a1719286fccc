namespace Escrow.Grains.Domain;

/// <summary>Who asked for a change (an API key's id, never the key) and what they said about it.</summary>
public sealed record AuditRequest(string KeyId, string Action, string? Reason);

/// <summary>
/// An accepted change asked for with a key carries its audit row in the same state write as the change (a
/// <see cref="EffectKind.WriteAudit"/> effect): the row is written from the outbox, retried until it is, and named by
/// the effect so a retry adds no second row.
/// </summary>
public static class EscrowAudit
{
    private sealed record Payload(string KeyId, string Action, string? Reason, DateTimeOffset At);

    public static EscrowState Add(EscrowState s, AuditRequest request, DateTimeOffset now) =>
        EscrowMachine.AddEffect(s, EffectKind.WriteAudit, payload: JsonSerializer.Serialize(new Payload(request.KeyId, request.Action, request.Reason, now)));

    /// <summary>The row a pending audit effect writes.</summary>
    public static (string KeyId, string Action, string? Reason, DateTimeOffset At) Read(PendingEffect e)
    {
        var p = JsonSerializer.Deserialize<Payload>(e.Payload ?? "null") ?? throw new EscrowInvariantException(Guid.Empty, $"audit effect {e.Id} has no payload");
        return (p.KeyId, p.Action, p.Reason, p.At);
    }

    public static string DedupeKey(Guid escrowId, int effectId) => $"escrow/{escrowId:N}/{effectId}";
}
