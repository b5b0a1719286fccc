namespace Escrow.Grains;

/// <summary>The tokens of a new escrow and the id of the secret they were derived with.</summary>
public sealed record IssuedTokens(string KeyId, string ReplyToken, string AccessToken)
{
    public string ReplyTokenHash => TokenHash.OfReplyToken(ReplyToken);

    public string AccessTokenHash => TokenHash.OfAccessToken(AccessToken);
}

/// <summary>
/// Access and reply tokens derived from a server secret, so the escrow need keep only their hashes: a token is
/// HMAC-SHA256(secret, purpose, escrow id, creation time), prefixed with the secret's id (4 hex digits of a hash of
/// it) so that, after a rotation, the right secret derives it again. Someone with the stored state but not the
/// secret can neither present the stored hash nor make a token.
/// </summary>
public sealed class EscrowTokens
{
    public const int KeyIdLength = 4;

    /// <summary>An access token: the secret's id and the 256-bit MAC in unpadded base64url (4 + 43 characters).</summary>
    public const int AccessTokenLength = KeyIdLength + 43;

    /// <summary>Legacy access tokens (escrows stored before): 32 random bytes in unpadded base64url.</summary>
    public const int LegacyAccessTokenLength = 43;

    private readonly (string Id, byte[] Key)[] _secrets;

    public EscrowTokens(IEnumerable<string> secrets) =>
        _secrets = [.. secrets.Where(s => !string.IsNullOrWhiteSpace(s)).Select(s => (KeyIdOf(s), Encoding.UTF8.GetBytes(s)))];

    /// <summary>The id of a secret as tokens carry it: 4 hex digits of its SHA-256 (the secret cannot be found from them).</summary>
    public static string KeyIdOf(string secret) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("escrow-token-secret-id\n" + secret)))[..KeyIdLength];

    /// <summary>The tokens of a new escrow, derived with the first secret.</summary>
    public IssuedTokens Issue(Guid escrowId, DateTimeOffset createdAt)
    {
        if (_secrets.Length == 0)
        {
            throw new InvalidOperationException("Tokens:Secrets: no secret configured; tokens cannot be made.");
        }
        var (id, key) = _secrets[0];
        return new IssuedTokens(id, Reply(key, id, escrowId, createdAt), Access(key, id, escrowId, createdAt));
    }

    /// <summary>
    /// The escrow's reply token, derived again (or the legacy clear one); null when the secret it was made with is no
    /// longer configured.
    /// </summary>
    public string? ReplyTokenOf(EscrowState s) => s.TokenKeyId is { } keyId
        ? Derive(keyId, key => Reply(key, keyId, s.Id, s.CreatedAt), t => TokenHash.OpensReply(s.ReplyTokenHash, t))
        : s.ReplyToken.Length > 0 ? s.ReplyToken : null;

    /// <summary>The escrow's access token, derived again (or the legacy clear one); null when its secret is gone.</summary>
    public string? AccessTokenOf(EscrowState s) => s.TokenKeyId is { } keyId
        ? Derive(keyId, key => Access(key, keyId, s.Id, s.CreatedAt), t => TokenHash.OpensAccess(s.AccessTokenHash, t))
        : s.AccessToken.Length > 0 ? s.AccessToken : null;

    // Every secret with the id is tried (two secrets may share an id); the stored hash says which one made the token.
    private string? Derive(string keyId, Func<byte[], string> make, Func<string, bool> isStored) =>
        _secrets.Where(s => s.Id == keyId).Select(s => make(s.Key)).FirstOrDefault(isStored);

    private static string Reply(byte[] key, string keyId, Guid escrowId, DateTimeOffset createdAt) =>
        escrowId.ToString("N") + keyId + Convert.ToHexStringLower(Mac(key, "reply", escrowId, createdAt).AsSpan(0, 16));

    private static string Access(byte[] key, string keyId, Guid escrowId, DateTimeOffset createdAt) =>
        keyId + Convert.ToBase64String(Mac(key, "access", escrowId, createdAt)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static byte[] Mac(byte[] key, string purpose, Guid escrowId, DateTimeOffset createdAt) =>
        HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"escrow-{purpose}-token\n{escrowId:N}\n{createdAt.UtcTicks}"));
}
