using System.Security.Cryptography;

namespace Escrow.Grains;

/// <summary>
/// The token in an escrow's reply address (reply+TOKEN@domain): the escrow id (32 hex digits) followed by 128
/// random bits (32 hex digits). The id routes the mail without a lookup table; the random part, compared in
/// constant time with the one stored on the escrow, makes the address unguessable.
/// </summary>
public static class ReplyToken
{
    public static string New(Guid escrowId) => escrowId.ToString("N") + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    public static bool TryGetEscrowId(string? token, out Guid escrowId)
    {
        escrowId = default;
        return token is { Length: 64 } && token.All(char.IsAsciiHexDigit) && Guid.TryParseExact(token[..32], "N", out escrowId);
    }

    public static bool Matches(string expected, string? candidate) =>
        candidate is not null && CryptographicOperations.FixedTimeEquals(
            System.Text.Encoding.ASCII.GetBytes(expected.ToLowerInvariant()),
            System.Text.Encoding.ASCII.GetBytes(candidate.ToLowerInvariant()));
}
