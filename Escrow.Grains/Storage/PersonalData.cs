namespace Escrow.Grains.Storage;

public static class PersonalData
{
    /// <summary>What erased personal data is replaced with, everywhere.</summary>
    public const string Erased = Domain.EscrowState.Erased;

    /// <summary>How an escrow's sender is found without storing the address: hex SHA-256 of it, trimmed, in lower case.</summary>
    public static string SenderKey(string email) => ClientGuardKeys.SenderHash(email);

    /// <summary><paramref name="text"/> with every occurrence of <paramref name="email"/> (any case) replaced by "erased".</summary>
    public static string? Without(string? text, string? email) =>
        text is null || string.IsNullOrEmpty(email) ? text : text.Replace(email, Erased, StringComparison.OrdinalIgnoreCase);
}

/// <summary>
/// What to erase outside the escrows' grain state: the rows of <paramref name="EscrowIds"/> (e-mail subjects, inbound
/// subjects and previews) and, when <paramref name="Email"/> is set, every occurrence of that address (e-mail log
/// addresses, inbound senders, alert and audit texts). <paramref name="Senders"/>: each escrow's sender address, erased
/// from that escrow's e-mail log rows only (a recipient's deletion erases their escrows' senders there, not elsewhere).
/// </summary>
public sealed record PersonalDataErasure(string? Email, IReadOnlyList<Guid> EscrowIds, IReadOnlyDictionary<Guid, string>? Senders = null);

/// <summary>Rows changed by an erasure, by table.</summary>
public sealed record ErasedRows(int EmailLog, int InboundMessages, int Alerts, int Audit)
{
    public override string ToString() => $"email_log {EmailLog}, inbound_messages {InboundMessages}, alerts {Alerts}, audit_log {Audit}";
}

/// <summary>The store's side of erasing personal data (both stores implement it beside <see cref="IEscrowStore"/>).</summary>
public interface IPersonalDataStore
{
    /// <summary>The escrows whose sender has this key (<see cref="PersonalData.SenderKey"/>) and is not erased yet.</summary>
    Task<IReadOnlyList<EscrowProjection>> FindEscrowsBySenderAsync(string senderKey, int limit, CancellationToken cancellationToken = default);

    /// <summary>Every escrow of a recipient (up to <paramref name="limit"/>).</summary>
    Task<IReadOnlyList<EscrowProjection>> FindEscrowsOfRecipientAsync(string recipientId, int limit, CancellationToken cancellationToken = default);

    /// <summary>Terminal escrows whose status changed before <paramref name="before"/> and whose bodies are kept, oldest first.</summary>
    Task<IReadOnlyList<EscrowProjection>> FindEscrowsToRetireAsync(DateTimeOffset before, int limit, CancellationToken cancellationToken = default);

    Task<ErasedRows> ErasePersonalDataAsync(PersonalDataErasure erasure, CancellationToken cancellationToken = default);
}
