using System.Text;

namespace Escrow.Sandbox;

/// <summary>Flat Stripe-style parameters: <c>metadata[escrow_id]=x</c> stays a single key.</summary>
internal sealed class StripeForm
{
    private readonly Dictionary<string, string> _values;

    public StripeForm(Dictionary<string, string> values) => _values = values;

    public static StripeForm Empty { get; } = new(new Dictionary<string, string>(StringComparer.Ordinal));

    public static StripeForm From(IEnumerable<KeyValuePair<string, Microsoft.Extensions.Primitives.StringValues>> pairs)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in pairs)
        {
            values[key] = value.ToString();
        }

        return new StripeForm(values);
    }

    public static async Task<StripeForm> ReadAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (HttpMethods.IsGet(request.Method) || HttpMethods.IsDelete(request.Method))
        {
            return From(request.Query);
        }

        if (!request.HasFormContentType)
        {
            return From(request.Query);
        }

        var form = await request.ReadFormAsync(cancellationToken).ConfigureAwait(false);
        return From(form);
    }

    /// <summary>A canonical text of all parameters, used to detect idempotency-key reuse.</summary>
    public string Fingerprint()
    {
        var builder = new StringBuilder();
        foreach (var (key, value) in _values.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            builder.Append(key).Append('=').Append(value).Append('&');
        }

        return builder.ToString();
    }

    public string? String(string key) =>
        _values.TryGetValue(key, out var value) && value.Length > 0 ? value : null;

    public string RequiredString(string key) =>
        String(key) ?? throw StripeApiException.MissingParam(key);

    public long? Long(string key)
    {
        var text = String(key);
        if (text is null)
        {
            return null;
        }

        return long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new StripeApiException(400, "invalid_request_error", "parameter_invalid_integer",
                $"Invalid integer: {text}", key);
    }

    public long RequiredLong(string key) => Long(key) ?? throw StripeApiException.MissingParam(key);

    public long PositiveAmount(string key)
    {
        var amount = RequiredLong(key);
        return amount > 0
            ? amount
            : throw new StripeApiException(400, "invalid_request_error", "amount_too_small",
                "Amount must be a positive integer in the smallest currency unit.", key);
    }

    public bool Bool(string key, bool fallback = false)
    {
        var text = String(key);
        return text switch
        {
            null => fallback,
            "true" => true,
            "false" => false,
            _ => throw new StripeApiException(400, "invalid_request_error", "parameter_invalid_boolean",
                $"Invalid boolean: {text}", key),
        };
    }

    public int Limit()
    {
        var limit = Long("limit") ?? 10;
        return limit is >= 1 and <= 100
            ? (int)limit
            : throw new StripeApiException(400, "invalid_request_error", "parameter_invalid_integer",
                "This value must be between 1 and 100.", "limit");
    }

    /// <summary>Whether <c>expand[]</c> / <c>expand[n]</c> names <paramref name="field"/>.</summary>
    public bool Expands(string field) =>
        _values.Any(p => p.Key.StartsWith("expand[", StringComparison.Ordinal)
            && p.Value.Split(',').Contains(field, StringComparer.Ordinal));

    /// <summary>Entries <c>prefix[name]=value</c> (one level, e.g. metadata).</summary>
    public IReadOnlyDictionary<string, string> Hash(string prefix)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var start = prefix + "[";
        foreach (var (key, value) in _values)
        {
            if (key.StartsWith(start, StringComparison.Ordinal) && key.EndsWith(']') && key.IndexOf('[', start.Length) < 0)
            {
                result[key[start.Length..^1]] = value;
            }
        }

        return result;
    }

    /// <summary>A list sent as <c>prefix[0]=a&amp;prefix[1]=b</c> (Stripe.net) or <c>prefix[]=a,b</c>, in index order.</summary>
    public IReadOnlyList<string> List(string prefix) =>
        [.. Hash(prefix).OrderBy(p => p.Key.Length).ThenBy(p => p.Key, StringComparer.Ordinal)
            .SelectMany(p => p.Key.Length == 0 ? p.Value.Split(',') : [p.Value])];

    /// <summary>Names <c>n</c> of entries <c>prefix[n][field]=value</c>, e.g. capabilities[transfers][requested].</summary>
    public IReadOnlyDictionary<string, string> NestedField(string prefix, string field)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var start = prefix + "[";
        var end = "][" + field + "]";
        foreach (var (key, value) in _values)
        {
            if (key.StartsWith(start, StringComparison.Ordinal) && key.EndsWith(end, StringComparison.Ordinal)
                && key.Length > start.Length + end.Length)
            {
                result[key[start.Length..^end.Length]] = value;
            }
        }

        return result;
    }
}

/// <summary>A Stripe-shaped error answer.</summary>
internal sealed class StripeApiException : Exception
{
    public StripeApiException(int status, string type, string? code, string message, string? param = null)
        : base(message)
    {
        Status = status;
        Type = type;
        Code = code;
        Param = param;
    }

    public int Status { get; }
    public string Type { get; }
    public string? Code { get; }
    public string? Param { get; }

    public static StripeApiException MissingParam(string param) =>
        new(400, "invalid_request_error", "parameter_missing", $"Missing required param: {param}.", param);

    public static StripeApiException Missing(string what, string id, string param) =>
        new(404, "invalid_request_error", "resource_missing", $"No such {what}: '{id}'", param);

    public StripeResponse ToResponse() =>
        new(Status, StripeJson.Error(Type, Code, Message, Param));
}

/// <summary>An answer of the Stripe emulator: status and JSON body.</summary>
internal readonly record struct StripeResponse(int Status, System.Text.Json.Nodes.JsonObject Body)
{
    public static StripeResponse Ok(System.Text.Json.Nodes.JsonObject body) => new(200, body);
}
