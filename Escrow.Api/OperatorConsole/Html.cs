using System.Runtime.CompilerServices;
using System.Text.Encodings.Web;

namespace Escrow.Api.OperatorConsole;

/// <summary>Markup that is already safe to send: only <see cref="Html"/> and the handler below make one.</summary>
public readonly record struct Markup(string Value)
{
    public static Markup Empty { get; } = new("");

    public override string ToString() => Value;
}

/// <summary>
/// Builds HTML from interpolated strings: every hole is HTML-encoded unless it is <see cref="Markup"/>, so text from
/// the database (reasons, subjects, e-mail addresses) can never become markup by being forgotten.
/// </summary>
[InterpolatedStringHandler]
public ref struct HtmlBuilder
{
    private readonly StringBuilder _builder;

    public HtmlBuilder(int literalLength, int formattedCount)
    {
        _builder = new StringBuilder(literalLength + formattedCount * 16);
    }

    public readonly void AppendLiteral(string value) => _builder.Append(value);

    public readonly void AppendFormatted(Markup value) => _builder.Append(value.Value);

    public readonly void AppendFormatted(IEnumerable<Markup> values)
    {
        foreach (var value in values)
        {
            _builder.Append(value.Value);
        }
    }

    /// <summary>A list of markup (any collection type, which overload resolution would send here) is markup; anything else is text.</summary>
    public readonly void AppendFormatted<T>(T value)
    {
        switch (value)
        {
            case Markup markup:
                AppendFormatted(markup);
                break;
            case IEnumerable<Markup> markups:
                AppendFormatted(markups);
                break;
            default:
                _builder.Append(HtmlEncoder.Default.Encode(Convert.ToString(value, CultureInfo.InvariantCulture) ?? ""));
                break;
        }
    }

    public readonly void AppendFormatted<T>(T value, string format) where T : IFormattable =>
        _builder.Append(HtmlEncoder.Default.Encode(value.ToString(format, CultureInfo.InvariantCulture)));

    public readonly Markup ToMarkup() => new(_builder.ToString());
}

public static class Html
{
    public static Markup Of([InterpolatedStringHandlerArgument] ref HtmlBuilder builder) => builder.ToMarkup();

    public static Markup Join(IEnumerable<Markup> parts) => new(string.Concat(parts.Select(p => p.Value)));

    public static Markup When(bool condition, Markup markup) => condition ? markup : Markup.Empty;

    public static string Time(DateTimeOffset? at) => at?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture) ?? "";

    public static string Money(long minor, string currency) => Escrow.Grains.Email.EmailComposer.Format(new Money(minor, Currency.Parse(currency)));

    /// <summary>A query string from the pairs that have a value.</summary>
    public static string Query(params (string Name, string? Value)[] pairs)
    {
        var present = pairs.Where(p => !string.IsNullOrEmpty(p.Value)).Select(p => $"{Uri.EscapeDataString(p.Name)}={Uri.EscapeDataString(p.Value!)}").ToList();
        return present.Count == 0 ? "" : "?" + string.Join("&", present);
    }
}
