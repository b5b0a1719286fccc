namespace Escrow.Grains.Domain;

/// <summary>
/// How an escrow keeps its access and reply tokens: as the hex SHA-256 of the token, never the token. Whoever reads
/// the stored state (a database dump, a backup, the Orleans dashboard) learns nothing that opens or releases the
/// escrow; a presented token is hashed and compared with the stored hash in constant time.
/// </summary>
public static class TokenHash
{
    /// <summary>The hex SHA-256 of an access token (case matters: base64url).</summary>
    public static string OfAccessToken(string token) => Hex(token);

    /// <summary>The hex SHA-256 of a reply token, in lower case: an e-mail address may come back in another case.</summary>
    public static string OfReplyToken(string token) => Hex(token.ToLowerInvariant());

    /// <summary>Whether <paramref name="presented"/> is the access token whose hash is <paramref name="storedHash"/>.</summary>
    public static bool OpensAccess(string storedHash, string? presented) =>
        presented is not null && storedHash.Length > 0 && SameHex(storedHash, OfAccessToken(presented));

    /// <summary>Whether <paramref name="presented"/> is the reply token whose hash is <paramref name="storedHash"/>.</summary>
    public static bool OpensReply(string storedHash, string? presented) =>
        presented is not null && storedHash.Length > 0 && SameHex(storedHash, OfReplyToken(presented));

    private static string Hex(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    private static bool SameHex(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(a), Encoding.ASCII.GetBytes(b));
}
