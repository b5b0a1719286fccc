using System.Security.Cryptography;
using System.Text;

namespace Escrow;

/// <summary>
/// What one client (a sender's e-mail address or a client address) has open or has done lately: its unpaid escrows
/// and its declined cards. Keyed by <see cref="ClientGuardKeys"/>.
/// </summary>
[Alias("escrow.IClientGuardGrain")]
public interface IClientGuardGrain : IGrainWithStringKey
{
    /// <summary>Counts this escrow as unpaid until <paramref name="expiresAt"/>, unless the client's cap is reached. Idempotent per escrow.</summary>
    [Alias("hold-unpaid")] Task<GuardAnswer> HoldUnpaidAsync(Guid escrowId, DateTimeOffset expiresAt);

    /// <summary>The escrow was paid or ended unpaid: it no longer counts.</summary>
    [Alias("release-unpaid")] Task ReleaseUnpaidAsync(Guid escrowId);

    /// <summary>Whether the client may create an escrow now, or is blocked after too many declined cards (and until when).</summary>
    [Alias("check-declines")] Task<GuardAnswer> CheckDeclinesAsync();

    /// <summary>
    /// A card of this client was declined; answers how many declines the client has had in the alert window. The id
    /// names the decline (escrow and decline number): the same decline reported again counts once.
    /// </summary>
    [Alias("record-decline")] Task<int> RecordDeclineAsync(string declineId);
}

/// <param name="Allowed">The client may go on.</param>
/// <param name="New">This call added the hold (a refused create gives it back).</param>
[GenerateSerializer, Immutable, Alias("escrow.guard-answer.v1")]
public sealed record GuardAnswer([property: Id(0)] bool Allowed, [property: Id(1)] bool New, [property: Id(5)] Rejection? Rejection = null,
    [property: Id(4)] DateTimeOffset? Until = null);

public static class ClientGuardKeys
{
    /// <summary>
    /// A sender's e-mail address, compared without case. The key is its SHA-256, so grain ids and stored grain state
    /// never hold the address itself and erasing a person's data need not touch them.
    /// </summary>
    public static string Sender(string email) => "sender/" + SenderHash(email);

    /// <summary>Hex SHA-256 of an e-mail address, trimmed, in lower case: how a sender is found without storing the address.</summary>
    public static string SenderHash(string email) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(email.Trim().ToLowerInvariant())));

    /// <summary>A client address (its rate-limit partition: an IPv4 address or an IPv6 /64).</summary>
    public static string Address(string partition) => "address/" + partition;

    /// <summary>Every client at once: the service-wide decline count behind the card-testing alert.</summary>
    public const string Everyone = "everyone";
}
