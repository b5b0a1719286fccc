namespace Escrow.Grains.Storage;

/// <summary>
/// The rules both <see cref="IEscrowStore"/> implementations share, so the in-memory store behaves exactly like
/// PostgreSQL: input checks (mirroring the CHECK constraints in sql/010-escrow.sql),
/// page limits and the pagination cursor.
/// </summary>
internal static partial class EscrowStoreRules
{
    public const int PageLimitMax = 500;
    public const int ListLimitMax = 1_000;

    /// <summary>
    /// PostgreSQL's text and jsonb refuse NUL, so a NUL that reached a store write (say in a provider's message) would
    /// fail the request: it is written as U+FFFD instead, and so is an unpaired surrogate, which has no UTF-8 form.
    /// </summary>
    public static string CleanText(string text)
    {
        var nul = text.AsSpan().IndexOf('\0');
        var surrogate = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF');
        if (nul < 0 && surrogate < 0)
        {
            return text;
        }
        var chars = text.ToCharArray();
        for (var k = 0; k < chars.Length; k++)
        {
            if (chars[k] == '\0')
            {
                chars[k] = '\uFFFD';
            }
            else if (char.IsHighSurrogate(chars[k]) && k + 1 < chars.Length && char.IsLowSurrogate(chars[k + 1]))
            {
                k++;
            }
            else if (char.IsSurrogate(chars[k]))
            {
                chars[k] = '\uFFFD';
            }
        }
        return new string(chars);
    }

    /// <summary>JSON text for a jsonb column: an escaped NUL (which jsonb refuses) becomes an escaped U+FFFD.</summary>
    public static string CleanJson(string json) =>
        json.Contains("\\u0000", StringComparison.Ordinal) ? EscapedNul().Replace(json, "$1\\ufffd") : CleanText(json);

    [System.Text.RegularExpressions.GeneratedRegex(@"(?<!\\)((?:\\\\)*)\\u0000")]
    private static partial System.Text.RegularExpressions.Regex EscapedNul();

    public static void CheckProjection(EscrowProjection p)
    {
        ArgumentNullException.ThrowIfNull(p);
        ArgumentException.ThrowIfNullOrEmpty(p.RecipientId, nameof(p.RecipientId));
        CheckStatus(p.Status);
        CheckCurrency(p.Currency);
        if (p.AmountMinor <= 0)
        {
            throw new ArgumentException($"Escrow {p.EscrowId}: amount must be positive, was {p.AmountMinor}.", nameof(p));
        }
        if (p.RecipientShareMinor < 0 || p.PlatformFeeMinor < 0 || p.RecipientShareMinor + p.PlatformFeeMinor != p.AmountMinor)
        {
            throw new ArgumentException(
                $"Escrow {p.EscrowId}: share {p.RecipientShareMinor} + fee {p.PlatformFeeMinor} must equal amount {p.AmountMinor}.", nameof(p));
        }
        if (p.TransferAttempts < 0 || p.Version < 0)
        {
            throw new ArgumentException($"Escrow {p.EscrowId}: transfer attempts and version must not be negative.", nameof(p));
        }
    }

    public static void CheckEntry(Guid escrowId, LedgerEntry e)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e.EscrowId != escrowId)
        {
            throw new ArgumentException($"Ledger entry {e.EscrowId}/{e.Seq} does not belong to escrow {escrowId}.", nameof(e));
        }
        if (e.Seq < 0)
        {
            throw new ArgumentException($"Ledger entry {e.EscrowId}/{e.Seq}: seq must not be negative.", nameof(e));
        }
        ArgumentException.ThrowIfNullOrEmpty(e.Kind, nameof(e.Kind));
        CheckStatus(e.Status);
        if (e.AmountMinor is null != e.Currency is null)
        {
            throw new ArgumentException($"Ledger entry {e.EscrowId}/{e.Seq}: amount and currency go together.", nameof(e));
        }
        if (e.Currency is not null)
        {
            CheckCurrency(e.Currency);
        }
        if (e.Data is not null)
        {
            try
            {
                using var _ = JsonDocument.Parse(e.Data);
            }
            catch (JsonException ex)
            {
                throw new ArgumentException($"Ledger entry {e.EscrowId}/{e.Seq}: data is not valid JSON.", nameof(e), ex);
            }
        }
    }

    public static void CheckStatus(string status)
    {
        if (!EscrowStatusNames.TryParseWire(status, out _))
        {
            throw new ArgumentException($"'{status}' is not an escrow status wire name.", nameof(status));
        }
    }

    private static void CheckCurrency(string currency)
    {
        if (currency is not { Length: 3 } || !currency.All(char.IsAsciiLetterUpper))
        {
            throw new ArgumentException($"'{currency}' is not an upper-case three-letter currency code.", nameof(currency));
        }
    }

    public static int PageLimit(int limit) => Math.Clamp(limit, 1, PageLimitMax);

    public static int ListLimit(int limit) => Math.Clamp(limit, 1, ListLimitMax);

    /// <summary>PostgreSQL keeps microseconds; the in-memory store truncates the same way and keeps UTC.</summary>
    public static DateTimeOffset Micros(DateTimeOffset value)
    {
        var ticks = value.UtcTicks;
        return new DateTimeOffset(ticks - (ticks % 10), TimeSpan.Zero);
    }

    public static DateTimeOffset? Micros(DateTimeOffset? value) => value is { } v ? Micros(v) : null;

    public static string EncodeCursor(DateTimeOffset createdAt, Guid escrowId) =>
        Convert.ToBase64String(Encoding.ASCII.GetBytes(
            string.Create(CultureInfo.InvariantCulture, $"v1:{createdAt.UtcTicks}:{escrowId:N}")));

    public static (DateTimeOffset CreatedAt, Guid EscrowId) DecodeCursor(string cursor)
    {
        try
        {
            var parts = Encoding.ASCII.GetString(Convert.FromBase64String(cursor)).Split(':');
            if (parts is ["v1", var ticks, var id])
            {
                return (new DateTimeOffset(long.Parse(ticks, CultureInfo.InvariantCulture), TimeSpan.Zero), Guid.ParseExact(id, "N"));
            }
        }
        catch (FormatException)
        {
        }
        catch (ArgumentOutOfRangeException)
        {
        }
        throw new ArgumentException("The page cursor is not one this store returned.", nameof(cursor));
    }
}
