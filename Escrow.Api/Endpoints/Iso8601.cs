using System.Xml;

namespace Escrow.Api.Endpoints;

/// <summary>ISO 8601 durations on the wire: "PT24H" in, "PT24H" out (never "P1D" for a 24-hour window).</summary>
public static class Iso8601
{
    public static bool TryParseDuration(string? text, out TimeSpan value)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text) || text.Length > 64 || !text.StartsWith('P'))
        {
            return false;
        }
        try
        {
            value = XmlConvert.ToTimeSpan(text);
            return value > TimeSpan.Zero;
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            return false;
        }
    }

    public static string Format(TimeSpan value)
    {
        var text = new StringBuilder("PT");
        var hours = (long)Math.Floor(value.TotalHours);
        if (hours > 0)
        {
            text.Append(hours.ToString(CultureInfo.InvariantCulture)).Append('H');
        }
        if (value.Minutes > 0)
        {
            text.Append(value.Minutes.ToString(CultureInfo.InvariantCulture)).Append('M');
        }
        if (value.Seconds > 0 || text.Length == 2)
        {
            text.Append(value.Seconds.ToString(CultureInfo.InvariantCulture)).Append('S');
        }
        return text.ToString();
    }
}
