using System.Reflection;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Escrow.Sandbox;

/// <summary>Stripe's JSON shapes (snake_case, <c>object</c> discriminator).</summary>
internal static class StripeJson
{
    public static JsonObject Error(string type, string? code, string message, string? param,
        string? declineCode = null, JsonObject? paymentIntent = null)
    {
        var error = new JsonObject { ["type"] = type, ["message"] = message };
        if (code is not null)
        {
            error["code"] = code;
            error["doc_url"] = "https://stripe.com/docs/error-codes/" + code.Replace('_', '-');
        }

        if (declineCode is not null)
        {
            error["decline_code"] = declineCode;
        }

        if (param is not null)
        {
            error["param"] = param;
        }

        if (paymentIntent is not null)
        {
            error["payment_intent"] = paymentIntent;
        }

        return new JsonObject { ["error"] = error };
    }

    /// <summary>
    /// An emulated object as Stripe writes it: every member of its model in snake_case, led by <c>object</c>, plus the
    /// fields its <see cref="Shape"/> adds. One rule serves every model, so a new member reaches the wire by itself.
    /// </summary>
    public static JsonObject Of<T>(T model) where T : notnull => JsonSerializer.SerializeToNode(model, Wire)!.AsObject();

    public static JsonObject Capability(SandboxAccount account, string name) =>
        Of(new SandboxCapability(name, account.Id, account.Capabilities.GetValueOrDefault(name, "inactive")));

    public static JsonObject List(string url, IEnumerable<JsonObject> items, bool hasMore) => new()
    {
        ["object"] = "list",
        ["data"] = new JsonArray([.. items]),
        ["has_more"] = hasMore,
        ["url"] = url,
    };

    /// <summary>
    /// What Stripe writes beyond a model's own members: the <c>object</c> name (none for an embedded value), the members
    /// only the emulator keeps, and fields that are fixed or nested differently from the model (a field that replaces
    /// a hidden member takes its name).
    /// </summary>
    private sealed record Shape(string? Object, string[] Hidden, params (string Name, Func<object, object?> Value)[] Fields);

    private static readonly Func<object, object?> NotLive = _ => false;

    private static readonly Dictionary<Type, Shape> Shapes = new()
    {
        [typeof(SandboxPaymentIntent)] = new("payment_intent", [], ("payment_method_types", _ => new[] { "card" }), ("livemode", NotLive)),
        [typeof(SandboxPaymentError)] = new(null, [nameof(SandboxPaymentError.PaymentMethod)],
            ("payment_method", e => ((SandboxPaymentError)e).PaymentMethod is { } id ? new CardPaymentMethod(id) : null)),
        [typeof(CardPaymentMethod)] = new("payment_method", []),
        [typeof(SandboxCharge)] = new("charge", [], ("paid", _ => true), ("livemode", NotLive)),
        [typeof(SandboxTransfer)] = new("transfer", [], ("livemode", NotLive)),
        [typeof(SandboxDispute)] = new("dispute", [], ("is_charge_refundable", _ => false), ("livemode", NotLive)),
        [typeof(SandboxTransferReversal)] = new("transfer_reversal", []),
        [typeof(SandboxRefund)] = new("refund", []),
        [typeof(SandboxAccount)] = new("account", [nameof(SandboxAccount.PaidOut), nameof(SandboxAccount.ServiceAgreement)],
            ("tos_acceptance", a => new { service_agreement = ((SandboxAccount)a).ServiceAgreement })),
        [typeof(SandboxCapability)] = new("capability", []),
        [typeof(SandboxWebhookEndpoint)] = new("webhook_endpoint", [nameof(SandboxWebhookEndpoint.Connect)],
            ("application", _ => null), ("livemode", NotLive)),
    };

    private static readonly JsonSerializerOptions Wire = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        TypeInfoResolver = new DefaultJsonTypeInfoResolver { Modifiers = { ApplyShape } },
        Converters = { new SortedMapConverter() },
    };

    private static void ApplyShape(JsonTypeInfo info)
    {
        if (!Shapes.TryGetValue(info.Type, out var shape))
        {
            return;
        }

        foreach (var hidden in info.Properties.Where(p => shape.Hidden.Contains(p.AttributeProvider is MemberInfo m ? m.Name : "")).ToList())
        {
            info.Properties.Remove(hidden);
        }

        if (shape.Object is { } name)
        {
            var objectName = info.CreateJsonPropertyInfo(typeof(string), "object");
            objectName.Get = _ => name;
            info.Properties.Insert(Math.Min(1, info.Properties.Count), objectName);
        }

        foreach (var (fieldName, value) in shape.Fields)
        {
            var field = info.CreateJsonPropertyInfo(typeof(object), fieldName);
            field.Get = value;
            info.Properties.Add(field);
        }
    }

    /// <summary>The card a failed payment was tried with, as <c>last_payment_error.payment_method</c>.</summary>
    private sealed record CardPaymentMethod(string Id)
    {
        public string Type => "card";
    }

    /// <summary>A capability of a Connect account, as its <c>capability.updated</c> event carries it.</summary>
    private sealed record SandboxCapability(string Id, string Account, string Status)
    {
        public bool Requested => true;
    }

    /// <summary>Metadata and capabilities in key order, so an answer does not depend on the order they were set in.</summary>
    private sealed class SortedMapConverter : JsonConverter<IReadOnlyDictionary<string, string>>
    {
        public override IReadOnlyDictionary<string, string> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            throw new NotSupportedException("Stripe's JSON is only written by the emulator.");

        public override void Write(Utf8JsonWriter writer, IReadOnlyDictionary<string, string> value, JsonSerializerOptions options)
        {
            writer.WriteStartObject();
            foreach (var (key, item) in value.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                writer.WriteString(key, item);
            }

            writer.WriteEndObject();
        }
    }
}
