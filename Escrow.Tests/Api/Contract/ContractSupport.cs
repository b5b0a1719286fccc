namespace Escrow.Tests.Api.Contract;

/// <summary>One in-memory API process (with the sandboxes) per test class.</summary>
public class InMemoryApiFixture : IAsyncLifetime
{
    public EscrowApiFactory Factory { get; private set; } = null!;

    protected virtual IDictionary<string, string?>? Settings => null;

    public Task InitializeAsync()
    {
        Factory = new EscrowApiFactory(settings: Settings);
        _ = Factory.Server;
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await Factory.DisposeAsync();
}

/// <summary>An API whose Postmark inbound limit is small, to exercise 413.</summary>
public sealed class SmallInboundLimitFixture : InMemoryApiFixture
{
    public const int InboundMaxBytes = 2048;

    protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?> { ["Postmark:InboundMaxBytes"] = InboundMaxBytes.ToString(System.Globalization.CultureInfo.InvariantCulture) };
}

/// <summary>An API whose OpenAPI document lists the admin routes too (Api:DocumentAdminRoutes), as operators' tooling reads it.</summary>
public sealed class AdminRoutesDocumentedFixture : InMemoryApiFixture
{
    protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?> { ["Api:DocumentAdminRoutes"] = "true" };
}

/// <summary>Assertions of contract tests (problem details), and the service-driving helpers under their short names.</summary>
public static class Contract
{
    public const string ProblemJson = "application/problem+json";

    public static string NewRecipient() => EscrowApiFactoryExtensions.NewRecipientId();

    public static string EmailOf(string recipientId) => EscrowApiFactoryExtensions.EmailOf(recipientId);

    public static Task<JsonElement> JsonOf(HttpResponseMessage response) => EscrowApiFactoryExtensions.JsonOf(response);

    public static string StripeSignature(string payload, long timestamp, string secret = EscrowApiFactory.WebhookSecret) =>
        EscrowApiFactoryExtensions.StripeSignature(payload, timestamp, secret);

    /// <summary>Asserts an RFC 9457 problem with this status and returns its body.</summary>
    public static async Task<JsonElement> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal(ProblemJson, response.Content.Headers.ContentType?.MediaType);
        using var document = JsonDocument.Parse(text);
        var problem = document.RootElement.Clone();
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrWhiteSpace(problem.GetProperty("title").GetString()));
        return problem;
    }

    /// <summary>Asserts a 400 validation problem whose errors name <paramref name="field"/>.</summary>
    public static async Task<JsonElement> AssertValidationProblemAsync(HttpResponseMessage response, string field)
    {
        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.True(problem.TryGetProperty("errors", out var errors), $"no errors in {problem}");
        Assert.True(errors.TryGetProperty(field, out var messages), $"errors do not name {field}: {errors}");
        Assert.NotEqual(0, messages.GetArrayLength());
        return problem;
    }

    public static async Task<string> RejectionOf(HttpResponseMessage response, HttpStatusCode status)
    {
        var problem = await AssertProblemAsync(response, status);
        return problem.GetProperty("rejection").GetString()!;
    }
}

/// <summary>An API that enables euros, dollars, pounds and yen (Escrow:Currencies), each with its own refund cap.</summary>
public sealed class MultiCurrencyApiFixture : InMemoryApiFixture
{
    protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Escrow:Currencies:0"] = "EUR", ["Escrow:Currencies:1"] = "USD", ["Escrow:Currencies:2"] = "GBP", ["Escrow:Currencies:3"] = "JPY",
        ["CircuitBreaker:AmountPerWindowMax:EUR"] = "10000", ["CircuitBreaker:AmountPerWindowMax:USD"] = "10000",
        ["CircuitBreaker:AmountPerWindowMax:GBP"] = "10000", ["CircuitBreaker:AmountPerWindowMax:JPY"] = "15000",
    };
}
