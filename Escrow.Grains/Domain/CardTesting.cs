namespace Escrow.Grains.Domain;

/// <summary>
/// Card testing: the anonymous create confirms any card and answers 402 or 201, so it can be used to sort stolen cards.
/// A client (an address, a sender e-mail) with too many declines in an hour is refused for an hour; many declines across
/// the service in a short window are an operator's business.
/// </summary>
public static class CardTesting
{
    public static readonly TimeSpan ClientWindow = TimeSpan.FromHours(1);
    public static readonly TimeSpan BlockFor = TimeSpan.FromHours(1);
    public static readonly TimeSpan AlertWindow = TimeSpan.FromMinutes(10);

    /// <summary>The declines a guard keeps (the newest): enough for any alert threshold the options allow.</summary>
    public const int DeclinesKeptMax = 1_000;

    /// <summary>The declines still inside the client window, the newest <see cref="DeclinesKeptMax"/> of them.</summary>
    public static ImmutableArray<Decline> Recent(ImmutableArray<Decline> declines, DateTimeOffset now)
    {
        var recent = declines.RemoveAll(d => now - d.At >= ClientWindow);
        return recent.Length > DeclinesKeptMax ? recent[^DeclinesKeptMax..] : recent;
    }

    /// <summary>When a client with these recent declines may create again, or null when it is not blocked.</summary>
    public static DateTimeOffset? BlockedUntil(ImmutableArray<Decline> recent, int declinesPerClientMax) =>
        recent.Length >= declinesPerClientMax ? recent[^1].At + BlockFor : null;

    public static int InAlertWindow(ImmutableArray<Decline> recent, DateTimeOffset now) => recent.Count(d => now - d.At < AlertWindow);

    /// <summary>More than the threshold in the alert window: card testing is suspected.</summary>
    public static bool Suspected(int inAlertWindow, int declinesPerWindowAlert) => inAlertWindow > declinesPerWindowAlert;
}

/// <summary>One declined card: when, and which decline it was (the escrow and its decline number), so a retried request is not counted twice.</summary>
[GenerateSerializer, Immutable, Alias("escrow.decline.v1")]
public sealed record Decline([property: Id(0)] DateTimeOffset At, [property: Id(1)] string Id);
