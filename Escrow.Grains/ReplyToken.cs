namespace Escrow.Grains;

/// <summary>
/// The token in an escrow's reply address (reply+TOKEN@domain), lower-case hex: the escrow id (32 digits), the id of
/// the token secret it was derived with (4 digits) and 128 bits of HMAC-SHA256 (32 digits); see
/// <see cref="EscrowTokens"/>. The id routes the mail without a lookup table; the MAC, whose hash the escrow keeps,
/// makes the address unguessable. Escrows stored before carry the legacy form: the id and 128 random bits (64 digits).
/// </summary>
public static class ReplyToken
{
    public const int Length = 68;

    public const int LegacyLength = 64;

    public static bool TryGetEscrowId(string? token, out Guid escrowId)
    {
        escrowId = default;
        return token is { Length: Length or LegacyLength } && token.All(char.IsAsciiHexDigit) && Guid.TryParseExact(token[..32], "N", out escrowId);
    }
}
