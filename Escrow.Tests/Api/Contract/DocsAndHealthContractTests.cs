namespace Escrow.Tests.Api.Contract;

/// <summary>API documentation and health endpoints, open to anyone.</summary>
public sealed class DocsAndHealthContractTests(InMemoryApiFixture fixture) : IClassFixture<InMemoryApiFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    [Fact]
    public async Task The_openapi_document_is_json_listing_the_escrow_and_recipient_routes()
    {
        var response = await App.Anonymous().GetAsync("/openapi/v1.json");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var paths = (await Contract.JsonOf(response)).GetProperty("paths");
        Assert.True(paths.TryGetProperty("/v1/escrows", out _), paths.ToString());
        Assert.True(paths.TryGetProperty("/v1/escrows/{id}", out _));
        Assert.True(paths.TryGetProperty("/v1/recipients/{recipientId}", out var recipient));
        Assert.True(recipient.GetProperty("put").TryGetProperty("requestBody", out _), "PUT recipient documents its body");
    }

    [Fact]
    public async Task The_scalar_reference_page_is_served()
    {
        var response = await App.Anonymous().GetAsync("/scalar/v1");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Liveness_answers_200_healthy()
    {
        var response = await App.Anonymous().GetAsync("/health/live");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Healthy", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Readiness_answers_200_healthy_with_in_memory_storage()
    {
        var response = await App.Anonymous().GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Healthy", await response.Content.ReadAsStringAsync());
    }
}
