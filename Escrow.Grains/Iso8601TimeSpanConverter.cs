using System.ComponentModel;
using System.Xml;

namespace Escrow.Grains;

/// <summary>
/// Lets configuration give durations as ISO 8601 ("PT15M", "P1D") as well as .NET's "00:15:00".
/// Registered once per process for TimeSpan, before options are bound.
/// </summary>
public sealed class Iso8601TimeSpanConverter : TimeSpanConverter
{
    private static int _registered;

    public static void Register()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 0)
        {
            TypeDescriptor.AddAttributes(typeof(TimeSpan), new TypeConverterAttribute(typeof(Iso8601TimeSpanConverter)));
        }
    }

    public override object? ConvertFrom(ITypeDescriptorContext? context, CultureInfo? culture, object value) =>
        value is string text && text.TrimStart().StartsWith('P')
            ? XmlConvert.ToTimeSpan(text.Trim())
            : base.ConvertFrom(context, culture, value);
}
